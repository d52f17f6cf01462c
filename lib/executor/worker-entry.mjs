// Worker threads do not inherit the parent's tsx loader hooks: load the TypeScript worker through tsx.
import { tsImport } from "tsx/esm/api";

await tsImport("./worker.ts", import.meta.url);
