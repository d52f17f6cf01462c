// `npm run build`: the bundles the platform runs (dist/, see lib/build.ts). `npm start` builds first by itself.
import { build } from "../../lib/build.ts";

try {
  const { written, ms } = await build();
  process.stdout.write(`built dist/ in ${ms} ms${written.length ? ` (${written.length} files changed)` : " (unchanged)"}\n`);
} catch {
  // esbuild has printed its messages (file, line, what is wrong).
  process.exit(1);
}
