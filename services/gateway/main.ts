// Gateway process: wiring and signals. See wire.ts and app.ts.
import { serve } from "@hono/node-server";
import { loadConfigOrExit, requireDatabaseUrl } from "../../lib/config.ts";
import { createDb } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createLogger } from "../../lib/log.ts";
import { collectProcessMetrics, watchOutbox } from "../../lib/metrics/index.ts";
import { createGateway } from "./wire.ts";

const config = loadConfigOrExit();
const databaseUrl = requireDatabaseUrl(config);
const log = createLogger("gateway", config.logLevel);

await migrate(databaseUrl);
// The prepared pool carries every request's enqueue: at 32–50 callers, 8 connections keep it unqueued.
const db = await createDb(databaseUrl, { maximumPoolSize: 20, preparedPoolSize: 8 });
const gateway = await createGateway(config, log, db, databaseUrl);
collectProcessMetrics("gateway");
watchOutbox(db);
const server = serve({ fetch: gateway.app.fetch, port: config.port, hostname: config.host }, (info) => {
  log.info({ port: info.port }, "gateway listening");
  process.send?.("ready"); // pm2 wait_ready, and the test harness
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "gateway stopping");
  // Stop accepting; requests in flight (sync callers included) finish within the bound; sync
  // callers still waiting past it are answered (503 or 504) and their rows abandoned.
  const closed = new Promise((r) => server.close(r));
  const within = (ms: number) => Promise.race([closed, new Promise((r) => setTimeout(r, ms))]);
  await within(config.shutdownTimeoutMs);
  await gateway.close();
  await within(500); // let those last answers reach their callers (all within the bound + 2 s)
  await db.end();
  log.info("gateway stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
