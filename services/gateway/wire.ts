// Builds the gateway (used by main.ts and by tests): one pool, one listener connection, the
// executor for direct runs, the route cache and the reply waiter, and the Hono app.
import type { Hono } from "hono";
import type { Config } from "../../lib/config.ts";
import type { Db } from "../../lib/db/pool.ts";
import { deadLettersModule } from "../../lib/dead-letters/sdk.ts";
import { Executor, loadSourceChecker } from "../../lib/executor/index.ts";
import { kvModule } from "../../lib/kv/index.ts";
import { Listener } from "../../lib/listen/index.ts";
import type { Logger } from "../../lib/log.ts";
import { enqueuer, findPendingExecution } from "../../lib/outbox/index.ts";
import { ROUTES_CHANNEL } from "../../lib/routes/index.ts";
import { createApp } from "./app.ts";
import { ReplyWaiter } from "./replies.ts";
import { RouteCache } from "./route-cache.ts";

export type Gateway = { app: Hono; listener: Listener; close(): Promise<void> };

export async function createGateway(config: Config, log: Logger, db: Db, databaseUrl: string): Promise<Gateway> {
  await loadSourceChecker();
  const executor = await Executor.create({ workers: config.executorWorkers, standbyWorker: config.executorStandby, logger: log, modules: [kvModule({ db, env: { config, log } }), deadLettersModule({ db, config })] });
  const routes = new RouteCache(db);
  let replies: ReplyWaiter | undefined;
  const listener = new Listener(databaseUrl, log, () => {
    routes.invalidate();
    void replies?.catchUp();
  });
  replies = new ReplyWaiter(listener, db, log);
  await listener.connect();
  await listener.listen(ROUTES_CHANNEL, () => routes.invalidate());
  const app = createApp({ config, db, log, executor, routes, replies, enqueue: enqueuer(db), pendingExecution: (id) => findPendingExecution(db, id) });
  return {
    app,
    listener,
    async close() {
      // Sync callers still waiting are answered (and their rows abandoned) before we go.
      await replies!.close(1000);
      await listener.close().catch(() => undefined);
      await executor.close();
    },
  };
}
