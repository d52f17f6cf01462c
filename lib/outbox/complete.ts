import { z } from "zod";
import type { Config } from "../config.ts";
import { sql, type Db } from "../db/pool.ts";
import { recordExecutions, type ExecutionKind, type FinishedExecution } from "../executions/index.ts";
import { recordAbandoned } from "../executions/abandoned.ts";
import type { ExecutionOutcome } from "../executor/index.ts";
import type { ClaimedRow } from "./claimBatch.ts";
import { retryDelayMs } from "./retry.ts";

export type Finished = { row: ClaimedRow; outcome: ExecutionOutcome; startedAt: Date };

/** Rows whose last attempt failed, inside the completing transaction (dead letters plug in here). */
export type ExhaustedHandler = (tx: Pick<Db, "query" | "any" | "one" | "maybeOne" | "oneFirst">, items: Finished[]) => Promise<void>;

/** A NOTIFY payload must stay under 8000 bytes; a larger reply is read from the executions row. */
const MAX_INLINE_REPLY = 7900;

export function replyMessage(id: string, outcome: Pick<ExecutionOutcome, "ok"> & { response?: unknown; error?: { code: string; message: string } }): string {
  const msg = JSON.stringify(outcome.ok ? { id, ok: true, response: outcome.response } : { id, ok: false, error: { code: outcome.error!.code, message: outcome.error!.message } });
  return Buffer.byteLength(msg) <= MAX_INLINE_REPLY ? msg : JSON.stringify({ id, stored: true });
}

/** Sync rows run once; others retry until max_attempts with the row's (or the default) policy. */
const willRetry = (f: Finished) => !f.outcome.ok && f.row.kind !== "http_sync" && f.row.attempts < f.row.max_attempts;

const toExecution = (f: Finished): FinishedExecution => ({
  id: f.row.id,
  appId: f.row.app_id,
  scriptId: f.row.script_id,
  kind: f.row.kind as ExecutionKind,
  routeId: f.row.route_id,
  triggerId: f.row.trigger_id,
  triggerDepth: f.row.trigger_depth,
  rootExecutionId: f.row.root_execution_id,
  attempts: f.row.attempts,
  queuedAt: new Date(f.row.created_at),
  startedAt: f.startedAt,
  durationMs: f.outcome.durationMs,
  logs: f.outcome.logs,
  ...(f.outcome.ok ? { response: f.outcome.response } : { error: f.outcome.error }),
});

/**
 * Completes a batch of executions in ONE transaction: final ones leave the outbox, are recorded,
 * and their sync callers get the reply by NOTIFY (or, if the caller left, the result is kept as
 * an abandoned execution); failed ones with attempts left go back with a backoff delay. A row
 * is touched only while it still carries the claim it was run under (claimer and attempt
 * number): a claim the sweeper took back and handed out again is no longer ours.
 */
export async function completeBatch(db: Pick<Db, "transaction">, items: Finished[], config: Config, onExhausted?: ExhaustedHandler): Promise<void> {
  const retries = items.filter(willRetry);
  const finals = items.filter((f) => !willRetry(f));
  await db.transaction(async (tx) => {
    if (retries.length) {
      const delays = retries.map((f) =>
        retryDelayMs(f.row.retry ?? { backoff: config.retryBackoff, base_ms: config.retryBaseMs, jitter_pct: config.retryJitterPct }, f.row.attempts),
      );
      await tx.query(sql.unsafe`
        UPDATE outbox o SET claimed_by = NULL, lease_until = NULL, run_at = now() + x.delay * interval '1 millisecond',
          last_error = x.error, first_failed_at = coalesce(o.first_failed_at, now())
        FROM unnest(${sql.array(retries.map((f) => f.row.id), "uuid")}, ${sql.array(retries.map((f) => f.row.claimed_by), "text")},
                    ${sql.array(retries.map((f) => f.row.attempts), "int4")}, ${sql.array(delays, "int4")},
                    ${sql.array(retries.map((f) => JSON.stringify(f.outcome.ok ? null : f.outcome.error)), "jsonb")})
          AS x(id, claimed_by, attempts, delay, error)
        WHERE o.id = x.id AND o.claimed_by = x.claimed_by AND o.attempts = x.attempts`);
    }
    if (!finals.length) return;
    const gone = await tx.any(sql.type(z.object({ id: z.string(), abandoned: z.boolean() }))`
      DELETE FROM outbox o
      USING unnest(${sql.array(finals.map((f) => f.row.id), "uuid")}, ${sql.array(finals.map((f) => f.row.claimed_by), "text")}, ${sql.array(finals.map((f) => f.row.attempts), "int4")})
        AS x(id, claimed_by, attempts)
      WHERE o.id = x.id AND o.claimed_by = x.claimed_by AND o.attempts = x.attempts
      RETURNING o.id, o.abandoned`);
    const abandoned = new Set(gone.filter((g) => g.abandoned).map((g) => g.id));
    const ours = new Set(gone.map((g) => g.id));
    const done = finals.filter((f) => ours.has(f.row.id));
    await recordExecutions(tx, done.map(toExecution));
    const replies = done.filter((f) => f.row.reply_to && !abandoned.has(f.row.id));
    if (replies.length) {
      await tx.query(sql.unsafe`
        SELECT pg_notify(c, p) FROM unnest(${sql.array(replies.map((f) => f.row.reply_to!), "text")}, ${sql.array(replies.map((f) => replyMessage(f.row.id, f.outcome)), "text")}) AS x(c, p)`);
    }
    const left = done.filter((f) => abandoned.has(f.row.id));
    if (left.length) await recordAbandoned(tx, left.map((f) => ({ ...toExecution(f), request: f.row.payload.request ?? null })));
    const exhausted = done.filter((f) => !f.outcome.ok && f.row.kind !== "http_sync");
    if (exhausted.length && onExhausted) await onExhausted(tx, exhausted);
  });
}
