// `npm test`: picks the Postgres server, runs ava, and closes with one summary line
// "ava: N passed, N failed". Server: DATABASE_URL if set; else the machine's
// postgres://root@127.0.0.1:5432/test if it answers; else an embedded server under .picloud/.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { build } from "../lib/build.ts";
import { startEmbeddedPostgres, type EmbeddedDb } from "../lib/db/embedded.ts";
import { dropTestDatabases } from "./helpers/db.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const LOCAL_URL = "postgres://root@127.0.0.1:5432/test";

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

let embedded: EmbeddedDb | undefined;
let base = process.env.DATABASE_URL;
if (!base) {
  if (await reachable(LOCAL_URL)) base = LOCAL_URL;
  else {
    process.stdout.write("no DATABASE_URL and no Postgres at 127.0.0.1:5432: starting an embedded one\n");
    embedded = await startEmbeddedPostgres({ dataDir: path.join(root, ".picloud/test-pg"), port: 54330, database: "picloud_test" });
    base = embedded.url;
  }
}
process.stdout.write(`tests use the Postgres server at ${new URL(base).host}\n`);

// The bundles the platform tests start (test/helpers/platform.ts), built once for every test file;
// code that does not build stops the run here with esbuild's messages.
try {
  await build();
} catch {
  process.exit(1);
}

// Test databases of killed runs older than two hours go; ours are dropped at the end.
const run = randomBytes(4).toString("hex");
await dropTestDatabases({ olderThanEpoch: Math.floor(Date.now() / 1000) - 2 * 3600 }, base);

const args = process.argv.slice(2);
const child = spawn(process.execPath, [path.join(root, "node_modules/ava/entrypoints/cli.mjs"), ...args], {
  cwd: root,
  env: { ...process.env, PICLOUD_TEST_BASE_URL: base, PICLOUD_TEST_RUN: run, PICLOUD_TEST_BUILT: "1", FORCE_COLOR: process.env.FORCE_COLOR ?? "0" },
  stdio: ["inherit", "pipe", "inherit"],
});
let out = "";
child.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  out += chunk.toString();
  if (out.length > 1_000_000) out = out.slice(-100_000);
});
const code: number = await new Promise((resolve) => child.on("close", (c) => resolve(c ?? 1)));

// ava prints "N tests passed" only when nothing failed: count the result marks instead.
const lines = out.split("\n");
const passed = lines.filter((l) => /^\s*✔/.test(l)).length;
const failed = lines.filter((l) => /^\s*✘/.test(l) && !/\[skip\]|\[todo\]/.test(l)).length + Number(/(\d+) uncaught exceptions?/.exec(out)?.[1] ?? 0) + Number(/(\d+) unhandled rejections?/.exec(out)?.[1] ?? 0);
const skipped = lines.filter((l) => /^\s*[-✘].*\[(skip|todo)\]/.test(l)).length;

if (!process.env.PICLOUD_TEST_KEEP_DBS) await dropTestDatabases({ run }, base).catch(() => undefined);
await embedded?.stop();

const exit = code !== 0 ? code : failed > 0 ? 1 : 0;
process.stdout.write(`\nava: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
process.exit(exit);
