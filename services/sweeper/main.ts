// Sweeper process: a pass every PICLOUD_SWEEP_INTERVAL_MS (see sweep.ts).
import { loadConfigOrExit, requireDatabaseUrl } from "../../lib/config.ts";
import { createDb } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { recordExhausted } from "../../lib/dead-letters/index.ts";
import { createLogger } from "../../lib/log.ts";
import { metricsPort, serveMetrics } from "../../lib/metrics/http.ts";
import { collectProcessMetrics } from "../../lib/metrics/index.ts";
import { vacuumOutbox } from "../../lib/outbox/index.ts";
import { sweepOnce } from "./sweep.ts";

const config = loadConfigOrExit();
const databaseUrl = requireDatabaseUrl(config);
const log = createLogger("sweeper", config.logLevel);

await migrate(databaseUrl);
const db = await createDb(databaseUrl, { maximumPoolSize: 2 });
collectProcessMetrics("sweeper");
const port = metricsPort("sweeper", config);
const metricsServer = port === null ? null : await serveMetrics(port, config.host, config.metricsToken, log);

let stopping = false;
let timer: NodeJS.Timeout | undefined;
let current: Promise<unknown> = Promise.resolve();
// Rows the sweeper fails for good (their dispatcher died on the last attempt) become dead letters.
const onExhausted = recordExhausted({ config, log });
const pass = () => {
  current = sweepOnce(db, config, log, onExhausted)
    .then((r) => r.ran && Object.values(r.deleted).some((n) => n > 0) && log.info(r, "sweep"))
    .catch((err) => log.error({ err: String(err) }, "sweep failed"))
    .finally(() => {
      if (!stopping) timer = setTimeout(pass, config.sweepIntervalMs);
    });
};
pass();
// The outbox churns faster than autovacuum looks (see vacuumOutbox): its own cadence, not the
// pass's (PICLOUD_SWEEP_INTERVAL_MS is 5 s by default, and a pass may take longer).
const OUTBOX_VACUUM_MS = 2000;
let vacuuming: Promise<unknown> | undefined;
const vacuum = setInterval(() => {
  vacuuming ??= vacuumOutbox(db)
    .catch((err) => log.warn({ err: String(err) }, "vacuuming the outbox failed"))
    .finally(() => (vacuuming = undefined));
}, OUTBOX_VACUUM_MS);
log.info({ interval_ms: config.sweepIntervalMs }, "sweeper started");
// pm2 wait_ready (and the test harness): ready means migrated and the first pass started.
process.send?.("ready");

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "sweeper stopping");
  clearTimeout(timer);
  clearInterval(vacuum);
  await Promise.all([current, vacuuming]);
  metricsServer?.close();
  await db.end();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
