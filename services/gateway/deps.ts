import type { Config } from "../../lib/config.ts";
import type { Db } from "../../lib/db/pool.ts";
import type { Logger } from "../../lib/log.ts";

/** What the gateway's HTTP handlers are wired with (main.ts builds it). */
export interface GatewayDeps {
  config: Config;
  db: Db;
  log: Logger;
}
