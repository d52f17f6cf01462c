// The services run as JavaScript bundles with plain `node`, not as TypeScript through tsx: tsx's
// loader thread costs ~33 MB in every process and ~20 MB more in every executor worker
// (docs/performance.md). One esbuild run writes the three services and the executor's worker to
// dist/; npm packages stay outside (`packages: "external"`) and load from node_modules/ as usual.
// Tests, benches, the launcher and the CLI keep running the sources through tsx.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import * as esbuild from "esbuild";
import { DIST, ENTRIES, ROOT } from "./layout.ts";

/**
 * Bundles every entry into dist/ (≈ 1 s). Safe to run again and concurrently (test files each
 * may build): every file is written whole under a temporary name, then renamed over the old one,
 * and left alone when unchanged. Throws with esbuild's messages when the code does not build.
 */
export async function build(): Promise<{ written: string[]; ms: number }> {
  const started = performance.now();
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(ENTRIES).map(([out, entry]) => ({ in: entry, out })),
    outdir: DIST,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    // lib/layout.ts: tells the bundled code where it runs from.
    define: { PICLOUD_BUNDLED: "true" },
    write: false,
    logLevel: "warning",
  });
  await mkdir(DIST, { recursive: true });
  const written: string[] = [];
  for (const file of result.outputFiles) {
    const old = await readFile(file.path).catch(() => undefined);
    if (old?.equals(file.contents)) continue;
    const tmp = `${file.path}.${process.pid}.tmp`;
    await writeFile(tmp, file.contents);
    await rename(tmp, file.path);
    written.push(path.relative(ROOT, file.path));
  }
  return { written, ms: Math.round(performance.now() - started) };
}

let once: ReturnType<typeof build> | undefined;
/** build(), once per process (the test helpers and benches call it before each start). */
export const buildOnce = (): ReturnType<typeof build> => (once ??= build());
