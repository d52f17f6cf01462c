import { sql, type Db } from "../db/pool.ts";
import { OUTBOX_CHANNEL } from "./enqueue.ts";

/**
 * A stopping dispatcher hands back what it could not finish: unclaimed, the attempt not
 * counted, ready at once, and the other dispatchers woken.
 */
export async function releaseClaims(db: Db, dispatcherId: string, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  return db.transaction(async (tx) => {
    const r = await tx.query(sql.unsafe`
      UPDATE outbox SET claimed_by = NULL, lease_until = NULL, attempts = greatest(attempts - 1, 0), run_at = now()
      WHERE id = ANY(${sql.array(ids, "uuid")}) AND claimed_by = ${dispatcherId}`);
    await tx.query(sql.unsafe`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`);
    return r.rowCount;
  });
}
