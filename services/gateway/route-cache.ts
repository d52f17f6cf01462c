// The gateway matches every request against an in-memory route table (no query per request).
// It is reloaded when a route, script or app changes (NOTIFY picloud_routes, sent by the
// changing transaction, so a reload started after it sees the change), after a listener
// reconnect (a NOTIFY may have been missed), and every 30 s as a safety net. After a
// NOTIFY, requests wait for the new table; past the 30 s age they are served from the current
// table while it reloads. A reload that fails keeps the last good table.
import type { Db } from "../../lib/db/pool.ts";
import { loadRouteTable, type RouteTable, type RouteTarget } from "../../lib/routes/index.ts";

const MAX_AGE_MS = 30_000;

type Table = RouteTable<RouteTarget>;

export class RouteCache {
  private current: Table | undefined;
  private loadedAt = 0;
  /** A route changed since `current` was loaded: requests wait for a new table. */
  private invalidated = true;
  private loading: Promise<Table> | undefined;
  /** Bumped by invalidate(): a load started before it never becomes current. */
  private generation = 0;

  constructor(private readonly db: Db) {}

  get(): Promise<Table> {
    if (this.current && !this.invalidated) {
      if (!this.loading && Date.now() - this.loadedAt > MAX_AGE_MS) this.reload().catch(() => undefined);
      return Promise.resolve(this.current);
    }
    return this.loading ?? this.reload();
  }

  /** A route changed (or a NOTIFY may have been missed): the next request waits for a fresh table. */
  invalidate(): void {
    this.generation++;
    this.invalidated = true;
    this.loading = undefined;
  }

  private reload(): Promise<Table> {
    const generation = this.generation;
    const loading: Promise<Table> = loadRouteTable(this.db)
      .then(
        (table) => {
          if (generation === this.generation) {
            this.current = table;
            this.loadedAt = Date.now();
            this.invalidated = false;
          }
          return table;
        },
        (err) => {
          if (this.current) return this.current; // the database is away: serve what we had
          throw err;
        },
      )
      .finally(() => {
        if (this.loading === loading) this.loading = undefined;
      });
    this.loading = loading;
    return loading;
  }
}
