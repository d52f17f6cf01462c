// The gateway matches every request against an in-memory route table, reloaded when a route or
// script changes (NOTIFY picloud_routes, sent by the changing transaction), after a listener
// reconnect, and at most every 30 s as a safety net.
import type { Db } from "../../lib/db/pool.ts";
import { loadRouteTable, type RouteTable, type RouteTarget } from "../../lib/routes/index.ts";

const MAX_AGE_MS = 30_000;

export class RouteCache {
  private table: Promise<RouteTable<RouteTarget>> | undefined;
  private loadedAt = 0;

  constructor(private readonly db: Db) {}

  get(): Promise<RouteTable<RouteTarget>> {
    if (!this.table || Date.now() - this.loadedAt > MAX_AGE_MS) {
      this.loadedAt = Date.now();
      const loading = loadRouteTable(this.db);
      loading.catch(() => {
        if (this.table === loading) this.table = undefined;
      });
      this.table = loading;
    }
    return this.table;
  }

  invalidate(): void {
    this.table = undefined;
  }
}
