import { z } from "zod";
import { fixedStatement, sql, type Db } from "../db/pool.ts";

export const claimedRow = z.object({
  id: z.string(),
  kind: z.enum(["http_sync", "http_async", "kv", "dead_letter", "replay"]),
  app_id: z.string(),
  app_slug: z.string(),
  script_id: z.string(),
  script_name: z.string(),
  /** null when the claimer said it already holds this (script id, version): see claimBatch. */
  source: z.string().nullable(),
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

/** How a dispatcher names a script source it holds: sources do not change within a version. */
export const scriptKey = (scriptId: string, version: number) => `${scriptId}:${version}`;

type Claimed = { next_run_at: string | null; rows: ClaimedRow[] };
const iso = (t: string) => new Date(t).toISOString();

/**
 * Claims up to `limit` ready rows in ONE statement: the oldest ready ones not locked by another
 * dispatcher (SKIP LOCKED), marked with our id and a lease, the attempt counted. Committed
 * before anything runs, so a crash after this point is recovered by the sweeper (lease or
 * heartbeat). Served by the partial index outbox_ready (run_at, id) WHERE claimed_by IS NULL.
 *
 * The same statement carries what the dispatcher needs to run each row (app slug, script name,
 * version, limits), the script's source only for (id, version) pairs not in `knownScripts`,
 * and when the next delayed row (a retry waiting out its backoff) comes due, so that an idle
 * dispatcher can wake for it without another query.
 *
 * A prepared statement (fixedStatement): planning it cost more than running it. Its rows are not
 * parsed against `claimedRow` (the shape is this statement's own): per-row validation was
 * measurable CPU on the dispatcher's main thread at high rates.
 */
export async function claimBatch(
  db: Pick<Db, "any" | "prepared">,
  dispatcherId: string,
  limit: number,
  leaseMs: number,
  knownScripts: readonly string[] = [],
): Promise<{ rows: ClaimedRow[]; nextRunAt: number | null }> {
  const [r] = await claim<Claimed>(db, limit, dispatcherId, leaseMs, knownScripts);
  // Timestamps inside JSON come as Postgres writes them; give them the API's ISO form.
  if (!r) throw new Error("the claim statement returned no row");
  const rows = r.rows.map((row) => ({ ...row, created_at: iso(row.created_at), claimed_at: iso(row.claimed_at), first_failed_at: row.first_failed_at && iso(row.first_failed_at) }));
  return { rows, nextRunAt: r.next_run_at === null ? null : Date.parse(r.next_run_at) };
}

const claimStatement = (limit: number, dispatcherId: string, leaseMs: number, knownScripts: readonly string[]) => sql.unsafe`
    WITH ready AS (
      SELECT id FROM outbox
      WHERE claimed_by IS NULL AND run_at <= now()
      ORDER BY run_at, id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED),
    claimed AS (
      UPDATE outbox o
      SET claimed_by = ${dispatcherId}, lease_until = now() + ${leaseMs} * interval '1 millisecond', attempts = o.attempts + 1
      FROM ready, scripts s, apps a
      WHERE o.id = ready.id AND s.id = o.script_id AND a.id = o.app_id
      RETURNING o.id, o.kind, o.app_id, a.slug AS app_slug, o.script_id, s.name AS script_name,
                CASE WHEN s.id::text || ':' || s.version = ANY(${sql.array(knownScripts, "text")}) THEN NULL ELSE s.source END AS source,
                s.version, s.timeout_ms, s.memory_mb, o.route_id, o.trigger_id, o.payload, o.reply_to, o.attempts, o.max_attempts, o.retry,
                o.trigger_depth, o.root_execution_id, o.first_failed_at, o.created_at, o.claimed_by, now() AS claimed_at)
    SELECT (SELECT min(run_at) FROM outbox WHERE claimed_by IS NULL AND run_at > now()) AS next_run_at,
           coalesce((SELECT json_agg(claimed) FROM claimed), '[]') AS rows`;

/** The claim's text is the same on every call: on the prepared pool only its values are sent. */
const claim = fixedStatement(claimStatement, (limit: number, dispatcherId: string, leaseMs: number, knownScripts: readonly string[]) => [limit, dispatcherId, leaseMs, knownScripts]);
