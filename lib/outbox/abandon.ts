import { sql, type Db } from "../db/pool.ts";
import { jsonbText } from "./jsonb.ts";

/**
 * The sync caller stopped waiting (timeout, disconnect, gateway stopping). A row no dispatcher
 * took yet is deleted, so it never runs; a claimed one is marked, and when it completes its
 * result is kept as an abandoned execution (completeBatch). "gone": it completed (or failed)
 * before we got here — its result is in executions.
 *
 * Two statements, not one: the UPDATE must take its own snapshot. A row being claimed at this
 * instant is locked by the claim; the DELETE waits, then skips it as claimed, and the UPDATE,
 * started after that, sees the claim and marks it.
 */
export async function abandonSync(db: Pick<Db, "query">, id: string): Promise<"deleted" | "marked" | "gone"> {
  const deleted = await db.query(sql.unsafe`DELETE FROM outbox WHERE id = ${id} AND claimed_by IS NULL`);
  if (deleted.rowCount) return "deleted";
  const marked = await db.query(sql.unsafe`UPDATE outbox SET abandoned = true WHERE id = ${id}`);
  return marked.rowCount ? "marked" : "gone";
}

/**
 * A sync execution that completed while its caller was leaving (abandonSync found it "gone",
 * the reply unheard): kept as abandoned from its executions row, with the request the gateway
 * still holds (the outbox row that carried it is gone). Returns whether it was kept.
 */
export async function keepAbandoned(db: Pick<Db, "query">, id: string, request: unknown): Promise<boolean> {
  const r = await db.query(sql.unsafe`
    INSERT INTO abandoned_executions (id, app_id, script_id, route_id, request, status, response, error, queued_at, completed_at)
    SELECT id, app_id, script_id, route_id, ${jsonbText(JSON.stringify(request ?? null))}::jsonb, status, response, error, queued_at, coalesce(finished_at, now())
    FROM executions WHERE id = ${id} AND kind = 'http_sync' AND status IN ('succeeded', 'failed')
    ON CONFLICT (id) DO NOTHING`);
  return r.rowCount > 0;
}
