#!/usr/bin/env node
// The `picloud` command (package.json "bin"). Plain JS so that node can start it without a
// loader flag; it registers tsx, then runs the TypeScript entry. Node resolves a bin symlink
// (npm link, node_modules/.bin) to this file, so tsx is found in the repo's node_modules.
import { register } from "tsx/esm/api";

register();
await import("./main.ts");
