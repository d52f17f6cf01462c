// Gateway process: wiring and signals. See wire.ts and app.ts.
import { serve } from "@hono/node-server";
import { loadConfigOrExit, requireDatabaseUrl } from "../../lib/config.ts";
import { createDb } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createLogger } from "../../lib/log.ts";
import { createGateway } from "./wire.ts";

const config = loadConfigOrExit();
const databaseUrl = requireDatabaseUrl(config);
const log = createLogger("gateway", config.logLevel);

await migrate(databaseUrl);
const db = await createDb(databaseUrl, { maximumPoolSize: 20 });
const gateway = await createGateway(config, log, db, databaseUrl);
const server = serve({ fetch: gateway.app.fetch, port: config.port, hostname: process.env.PICLOUD_HOST ?? "0.0.0.0" }, (info) =>
  log.info({ port: info.port }, "gateway listening"),
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "gateway stopping");
  // Stop accepting; requests in flight (sync callers included) finish within the bound.
  const closed = new Promise((r) => server.close(r));
  const forced = new Promise((r) => setTimeout(r, config.shutdownTimeoutMs));
  await Promise.race([closed, forced]);
  await gateway.close();
  await db.end();
  log.info("gateway stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
