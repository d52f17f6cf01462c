import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";

export const claimedRow = z.object({
  id: z.string(),
  kind: z.enum(["http_sync", "http_async", "kv", "dead_letter", "replay"]),
  app_id: z.string(),
  app_slug: z.string(),
  script_id: z.string(),
  script_name: z.string(),
  source: z.string(),
  version: z.number(),
  timeout_ms: z.number(),
  memory_mb: z.number(),
  route_id: z.string().nullable(),
  trigger_id: z.string().nullable(),
  payload: z.object({ request: z.any().optional(), event: z.any().optional() }),
  reply_to: z.string().nullable(),
  attempts: z.number(),
  max_attempts: z.number(),
  retry: z.object({ backoff: z.enum(["exponential", "linear", "constant"]), base_ms: z.number(), jitter_pct: z.number() }).nullable(),
  trigger_depth: z.number(),
  root_execution_id: z.string().nullable(),
  first_failed_at: z.string().nullable(),
  created_at: z.string(),
  claimed_by: z.string(),
  claimed_at: z.string(),
});
export type ClaimedRow = z.infer<typeof claimedRow>;

/**
 * Claims up to `limit` ready rows in one statement: the oldest ready ones not locked by another
 * dispatcher (SKIP LOCKED), marked with our id and a lease, the attempt counted. Committed
 * before anything runs, so a crash after this point is recovered by the sweeper.
 */
export async function claimBatch(db: Db, dispatcherId: string, limit: number, leaseMs: number): Promise<readonly ClaimedRow[]> {
  return db.any(sql.type(claimedRow)`
    WITH ready AS (
      SELECT id FROM outbox
      WHERE claimed_by IS NULL AND run_at <= now()
      ORDER BY run_at, id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    UPDATE outbox o
    SET claimed_by = ${dispatcherId}, lease_until = now() + ${leaseMs} * interval '1 millisecond', attempts = o.attempts + 1
    FROM ready, scripts s, apps a
    WHERE o.id = ready.id AND s.id = o.script_id AND a.id = o.app_id
    RETURNING o.id, o.kind, o.app_id, a.slug AS app_slug, o.script_id, s.name AS script_name, s.source, s.version, s.timeout_ms, s.memory_mb,
              o.route_id, o.trigger_id, o.payload, o.reply_to, o.attempts, o.max_attempts, o.retry, o.trigger_depth,
              o.root_execution_id, o.first_failed_at, o.created_at, o.claimed_by, now() AS claimed_at`);
}

/** When the next delayed row becomes ready (null when none is waiting). */
export async function nextRunAt(db: Db): Promise<number | null> {
  const at = await db.maybeOneFirst(sql.type(z.object({ at: z.string().nullable() }))`
    SELECT min(run_at) AS at FROM outbox WHERE claimed_by IS NULL`);
  return at ? Date.parse(at) : null;
}
