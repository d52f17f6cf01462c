import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { enqueue, type NewOutboxRow } from "./enqueue.ts";

/**
 * Enqueues an async route's row unless the same route + Idempotency-Key was accepted in the last
 * 24 hours, in which case the first execution is returned. Race-safe: the key's primary key
 * decides, in the same transaction as the row.
 */
export async function enqueueOnce(db: Db, row: NewOutboxRow & { routeId: string }, key: string): Promise<{ executionId: string; acceptedAt: string; repeated: boolean }> {
  return db.transaction(async (tx) => {
    const won = await tx.maybeOneFirst(sql.type(z.object({ execution_id: z.string() }))`
      INSERT INTO idempotency_keys (route_id, key, execution_id) VALUES (${row.routeId}, ${key}, ${row.id})
      ON CONFLICT (route_id, key) DO UPDATE SET execution_id = excluded.execution_id, created_at = now()
        WHERE idempotency_keys.created_at < now() - interval '24 hours'
      RETURNING execution_id`);
    if (won) return { executionId: row.id, acceptedAt: await enqueue(tx, [row]), repeated: false };
    const first = await tx.one(sql.type(z.object({ execution_id: z.string(), created_at: z.string() }))`
      SELECT execution_id, created_at FROM idempotency_keys WHERE route_id = ${row.routeId} AND key = ${key}`);
    return { executionId: first.execution_id, acceptedAt: first.created_at, repeated: true };
  });
}
