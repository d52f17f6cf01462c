// Dispatcher process: wiring only. See dispatcher.ts for the loop.
import { loadConfigOrExit, requireDatabaseUrl } from "../../lib/config.ts";
import { createDb } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { recordExhausted } from "../../lib/dead-letters/index.ts";
import { deadLettersModule } from "../../lib/dead-letters/sdk.ts";
import { Executor } from "../../lib/executor/index.ts";
import { kvCompletionEffects, kvModule } from "../../lib/kv/index.ts";
import { Listener } from "../../lib/listen/index.ts";
import { createLogger } from "../../lib/log.ts";
import { metricsPort, serveMetrics } from "../../lib/metrics/http.ts";
import { collectProcessMetrics, watchDispatcher } from "../../lib/metrics/index.ts";
import { OUTBOX_CHANNEL, heartbeat, unregisterDispatcher } from "../../lib/outbox/index.ts";
import { Dispatcher, type HostCall } from "./dispatcher.ts";

const config = loadConfigOrExit();
const databaseUrl = requireDatabaseUrl(config);
const log = createLogger("dispatcher", config.logLevel);

await migrate(databaseUrl);
const db = await createDb(databaseUrl, { maximumPoolSize: Math.min(config.dispatcherConcurrency + 2, 20) });
const executor = await Executor.create<HostCall>({
  workers: config.executorWorkers,
  standbyWorker: config.executorStandby,
  logger: log,
  modules: [kvModule({ db, env: { config, log } }), deadLettersModule({ db, config })],
});
const dispatcher = new Dispatcher(db, executor, config, log, recordExhausted({ config, log }), kvCompletionEffects);
collectProcessMetrics("dispatcher");
watchDispatcher(() => ({ inFlight: dispatcher.inFlight, concurrency: config.dispatcherConcurrency }));
const port = metricsPort("dispatcher", config);
const metricsServer = port === null ? null : await serveMetrics(port, config.host, config.metricsToken, log);
const beatOnce = () => heartbeat(db, dispatcher.id, config.dispatcherConcurrency, config.leaseMs, dispatcher.held());
await beatOnce();

const listener = config.pollOnly ? undefined : new Listener(databaseUrl, log, () => dispatcher.wake());
if (listener) {
  await listener.connect();
  await listener.listen(OUTBOX_CHANNEL, () => dispatcher.wake());
}

const jitter = (ms: number) => ms * (0.8 + Math.random() * 0.4);
let pollTimer: NodeJS.Timeout;
const poll = () => {
  dispatcher.wake();
  pollTimer = setTimeout(poll, jitter(config.pollIntervalMs));
};
poll();
// One beat at a time: while the database is away they would pile up on the pool.
let beating: Promise<unknown> | undefined;
const beat = setInterval(() => {
  beating ??= beatOnce()
    .catch((err) => log.warn({ err: String(err) }, "heartbeat failed"))
    .finally(() => (beating = undefined));
}, config.heartbeatMs);
log.info({ id: dispatcher.id, concurrency: config.dispatcherConcurrency, poll_only: config.pollOnly }, "dispatcher started");
// pm2 wait_ready (and the test harness): ready means connected, listening, heartbeating.
process.send?.("ready");

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "dispatcher stopping");
  clearTimeout(pollTimer);
  // Keep heartbeating while draining: a silent dispatcher's claims are recovered by the sweeper
  // (after 3 heartbeats) and would run a second time while this one is still finishing them.
  await dispatcher.stop(config.shutdownTimeoutMs);
  clearInterval(beat);
  await beating; // a beat landing after the goodbye would register us again
  await unregisterDispatcher(db, dispatcher.id).catch(() => undefined);
  await listener?.close().catch(() => undefined);
  await executor.close();
  metricsServer?.close();
  await db.end();
  log.info("dispatcher stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
