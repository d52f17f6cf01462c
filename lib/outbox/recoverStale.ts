import { sql, type Db } from "../db/pool.ts";
import { claimedRow, type ClaimedRow } from "./claimBatch.ts";

/**
 * Claims whose lease ran out, or whose dispatcher stopped heartbeating: the dispatcher died or
 * hangs. Locked for the caller's transaction (SKIP LOCKED: a completing dispatcher wins).
 * Nothing is stale in the first `staleHeartbeatMs` after Postgres (re)started: dispatchers that
 * lived through the restart get that long to heartbeat (and extend their leases) again, so their
 * work is not taken from them and run twice.
 */
export async function lockStaleClaims(tx: Pick<Db, "any">, staleHeartbeatMs: number, limit = 500): Promise<readonly ClaimedRow[]> {
  return tx.any(sql.type(claimedRow)`
    WITH stale AS (
      SELECT o.id FROM outbox o
      WHERE o.claimed_by IS NOT NULL
        AND now() - pg_postmaster_start_time() > ${staleHeartbeatMs} * interval '1 millisecond'
        AND (o.lease_until < now()
             OR NOT EXISTS (SELECT 1 FROM dispatchers d WHERE d.id = o.claimed_by AND d.heartbeat_at > now() - ${staleHeartbeatMs} * interval '1 millisecond'))
      LIMIT ${limit}
      FOR UPDATE OF o SKIP LOCKED)
    SELECT o.id, o.kind, o.app_id, a.slug AS app_slug, o.script_id, s.name AS script_name, s.source, s.version, s.timeout_ms, s.memory_mb,
           o.route_id, o.trigger_id, o.payload, o.reply_to, o.attempts, o.max_attempts, o.retry, o.trigger_depth,
           o.root_execution_id, o.first_failed_at, o.created_at, o.claimed_by, now() AS claimed_at
    FROM outbox o JOIN stale USING (id) JOIN scripts s ON s.id = o.script_id JOIN apps a ON a.id = o.app_id`);
}
