// One sweeper pass: recover stale claims, then apply retention. Several sweepers may run: a
// pass runs only while holding a transaction-level advisory lock, so passes never overlap.
import type { Config } from "../../lib/config.ts";
import { sql, type Db } from "../../lib/db/pool.ts";
import { deleteOldDeadLetters } from "../../lib/dead-letters/index.ts";
import { deleteExpired } from "../../lib/kv/index.ts";
import type { Logger } from "../../lib/log.ts";
import * as metrics from "../../lib/metrics/index.ts";
import { OUTBOX_CHANNEL, completeBatch, lockStaleClaims, type ExhaustedHandler, type Finished } from "../../lib/outbox/index.ts";

/** Held (transaction-scoped) by a sweeper pass; a pass that cannot take it skips. */
export const SWEEP_LOCK = 0x70_73_77_70; // "pswp"

/** Rows of one table a pass deletes at most. */
export const RETENTION_BATCH = 5000;

export type SweepResult = { ran: boolean; recovered: number; deleted: Record<string, number> };

export async function sweepOnce(db: Db, config: Config, log: Logger, onExhausted?: ExhaustedHandler): Promise<SweepResult> {
  const recovered: Finished[] = [];
  const result = await metrics.settling(() => recovered.map((f) => f.row.id), () => pass(db, config, log, recovered, onExhausted));
  metrics.recovered(recovered);
  return result;
}

/** `recovered` gets the stale claims the pass fails, counted by the caller once the pass commits. */
async function pass(db: Db, config: Config, log: Logger, recovered: Finished[], onExhausted?: ExhaustedHandler): Promise<SweepResult> {
  return db.transaction(async (tx) => {
    const got = await tx.oneFirst(sql.unsafe`SELECT pg_try_advisory_xact_lock(${SWEEP_LOCK}) AS got`);
    if (!got) return { ran: false, recovered: 0, deleted: {} };

    // A stale claim counts as a failed attempt: retried with backoff while attempts remain, so a
    // row that keeps killing its dispatcher ends failed instead of looping. A sync row is never
    // run again (its caller may have been answered): it fails, and a waiting caller gets a 500.
    const stale = await lockStaleClaims(tx, config.heartbeatMs * 3);
    if (stale.length) {
      const now = new Date();
      recovered.push(
        ...stale.map((row) => ({
          row,
          startedAt: now,
          outcome: { ok: false as const, error: { code: "internal" as const, message: `the dispatcher running it stopped (attempt ${row.attempts})` }, logs: [], durationMs: 0 },
        })),
      );
      await completeBatch(tx, recovered, config, onExhausted);
      await tx.query(sql.unsafe`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`);
      log.warn({ recovered: stale.length, executions: stale.map((r) => r.id) }, "recovered stale claims");
    }

    // Retention, at most RETENTION_BATCH rows per table and pass (each by its time index): a
    // pass, and the locks it holds, stays short after a long downtime; the next pass goes on.
    const days = (n: number) => sql.fragment`now() - ${n} * interval '1 day'`;
    const oldest = (table: string, column: string, before: ReturnType<typeof sql.fragment>) =>
      sql.unsafe`DELETE FROM ${sql.identifier([table])} WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM ${sql.identifier([table])} WHERE ${sql.identifier([column])} < ${before} LIMIT ${RETENTION_BATCH}))`;
    const retention: [string, ReturnType<typeof sql.unsafe>][] = [
      ["executions", oldest("executions", "finished_at", days(config.executionLogRetentionDays))],
      ["abandoned_executions", oldest("abandoned_executions", "completed_at", days(config.abandonedRetentionDays))],
      ["idempotency_keys", oldest("idempotency_keys", "created_at", sql.fragment`now() - interval '24 hours'`)],
      ["dispatchers", oldest("dispatchers", "heartbeat_at", sql.fragment`now() - interval '1 hour'`)],
    ];
    const deleted: Record<string, number> = {};
    for (const [name, q] of retention) deleted[name] = (await tx.query(q)).rowCount;
    deleted.kv_entries = await deleteExpired(tx, RETENTION_BATCH);
    deleted.dead_letters = await deleteOldDeadLetters(tx, config.deadLetterRetentionDays, RETENTION_BATCH);
    return { ran: true, recovered: stale.length, deleted };
  });
}
