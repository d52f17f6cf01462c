import type { Config } from "../../lib/config.ts";
import type { Db } from "../../lib/db/pool.ts";
import type { Execution } from "../../lib/executions/index.ts";
import type { Executor } from "../../lib/executor/index.ts";
import type { Logger } from "../../lib/log.ts";
import type { NewOutboxRow } from "../../lib/outbox/index.ts";
import type { ReplyWaiter } from "./replies.ts";
import type { RouteCache } from "./route-cache.ts";

/** What the gateway's HTTP handlers are wired with (main.ts builds it). */
export interface GatewayDeps {
  config: Config;
  db: Db;
  log: Logger;
  /** Runs scripts in this process: the admin API's direct execution. */
  executor: Executor<unknown>;
  /** The route table, kept current. */
  routes: RouteCache;
  /** Writes a user route's outbox row (rows of concurrent requests share a statement); resolves to its accepted_at. */
  enqueue: (row: NewOutboxRow) => Promise<string>;
  /** Sync callers wait here for their reply. */
  replies: ReplyWaiter;
  /** An execution still in the outbox (queued or running), for GET /admin/executions/{id}. */
  pendingExecution?: (id: string) => Promise<Execution | null>;
}
