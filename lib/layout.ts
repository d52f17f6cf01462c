// Where things are: the checkout, for the files picloud reads at run time (sql/, the dashboard's
// assets, node_modules/), and the bundles in dist/. The services run as esbuild bundles
// (lib/build.ts) while tests, benches and tools run the sources through tsx, so `import.meta.url`
// names a different file in each case: code asks here instead of resolving paths from itself.
import path from "node:path";
import { fileURLToPath } from "node:url";

/** `true` in the bundles (an esbuild `define` in lib/build.ts); not defined at all under tsx. */
declare const PICLOUD_BUNDLED: boolean | undefined;

/** Whether this code runs from a bundle in dist/ (plain node) rather than from the sources (tsx). */
export const bundled = typeof PICLOUD_BUNDLED === "boolean" && PICLOUD_BUNDLED;

/**
 * The checkout's root folder (with a trailing separator). This file sits one folder below it,
 * and so does every bundle (they are written flat into dist/): `..` is the root either way.
 */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** A path inside the checkout. */
export const fromRoot = (...parts: string[]): string => path.join(ROOT, ...parts);

/** Each bundle (dist/<name>.js) and its entry. */
export const ENTRIES = {
  gateway: "services/gateway/main.ts",
  dispatcher: "services/dispatcher/main.ts",
  sweeper: "services/sweeper/main.ts",
  "executor-worker": "lib/executor/worker.ts",
} as const;
export type Bundle = keyof typeof ENTRIES;

export const DIST = fromRoot("dist");
export const bundlePath = (name: Bundle): string => path.join(DIST, `${name}.js`);
/**
 * How node runs the bundles (pm2's ecosystem.config.cjs and docker-compose.yml say the same).
 * --enable-source-maps: stack traces name the .ts files and lines (the maps sit beside the bundles).
 * --max-semi-space-size=4 (MB): V8's young generation, in the main thread and the executor's
 * workers, stops at 2 × 4 MB instead of growing to 2 × 16 MB under load: −10 to −25 MB of RSS
 * per process at no measured CPU cost per request (docs/performance.md).
 * --heap-growing-percent=50: after a full GC the old generation may grow by 1.5× (at least
 * V8's 8 MB step) before the next one, instead of V8's adaptive factor of up to 4×, which let
 * garbage pile up to 2–3× the live heap under sustained load: dispatcher peak 127–141 → 114–119 MB,
 * gateway 208 → 110–117 MB over a 30 s soak and a 20,000-row drain, no CPU cost beyond noise.
 */
export const BUNDLE_NODE_ARGS = ["--enable-source-maps", "--max-semi-space-size=4", "--heap-growing-percent=50"] as const;
