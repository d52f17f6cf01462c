import { hostname } from "node:os";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";

/**
 * A live dispatcher's heartbeat, which also extends the lease on the claims it is working on:
 * work queued behind other executions in a busy dispatcher is not taken from it while it is
 * alive. Only the claims it knows it holds: one whose claim statement committed but whose
 * answer was lost (the connection dropped) runs out its lease and the sweeper recovers it. A
 * dispatcher that dies or hangs stops heartbeating, and the sweeper recovers its claims.
 */
export async function heartbeat(db: Db, id: string, concurrency: number, leaseMs: number, held: string[]): Promise<void> {
  await db.query(sql.unsafe`
    WITH beat AS (
      INSERT INTO dispatchers (id, host, pid, concurrency) VALUES (${id}, ${hostname()}, ${process.pid}, ${concurrency})
      ON CONFLICT (id) DO UPDATE SET heartbeat_at = now())
    UPDATE outbox SET lease_until = now() + ${leaseMs} * interval '1 millisecond' WHERE claimed_by = ${id} AND id = ANY(${sql.array(held, "uuid")})`);
}

export async function unregisterDispatcher(db: Db, id: string): Promise<void> {
  await db.query(sql.unsafe`DELETE FROM dispatchers WHERE id = ${id}`);
}

/** For the gateway's 503: live dispatchers and the ready backlog. */
export async function availability(db: Db, staleMs: number): Promise<{ alive: number; backlog: number }> {
  return db.one(sql.type(z.object({ alive: z.number(), backlog: z.number() }))`
    SELECT (SELECT count(*) FROM dispatchers WHERE heartbeat_at > now() - ${staleMs} * interval '1 millisecond')::int AS alive,
           (SELECT count(*) FROM outbox WHERE claimed_by IS NULL AND run_at <= now())::int AS backlog`);
}
