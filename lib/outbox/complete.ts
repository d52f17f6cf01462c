import type { Config } from "../config.ts";
import { z } from "zod";
import { fixedStatement, sql, type Db } from "../db/pool.ts";
import { insertAbandoned } from "../executions/abandoned.ts";
import { executionsFrom, executionsJson, insertExecutions, type ExecutionKind, type FinishedExecution } from "../executions/index.ts";
import type { ExecutionOutcome } from "../executor/index.ts";
import type { ClaimedRow } from "./claimBatch.ts";
import { jsonbText } from "./jsonb.ts";
import { retryDelayMs } from "./retry.ts";

/** `call`: the host-call context the execution ran with (SDK modules keep its state by it). */
export type Finished = { row: ClaimedRow; outcome: ExecutionOutcome; startedAt: Date; call?: unknown };

type Tx = Pick<Db, "query" | "any" | "anyFirst" | "one" | "maybeOne" | "oneFirst" | "transaction"> & { readonly prepared?: Db["prepared"] };
/** Rows whose last attempt failed, inside the completing transaction (dead letters plug in here). */
export type ExhaustedHandler = (tx: Tx, items: Finished[]) => Promise<void>;

/**
 * Host-side effects of successful executions (their KV writes and the triggers those fire),
 * committed in the transaction that completes them, only for rows still ours. `pending` picks
 * the items that have any; `commit` may turn an outcome into a failure (effects that cannot
 * commit), which then completes as a failed attempt.
 */
export type CompletionEffects = { pending(items: Finished[]): Finished[]; commit(tx: Tx, items: Finished[]): Promise<void> };

/** A NOTIFY payload must stay under 8000 bytes; a larger reply is read from the executions row. */
const MAX_INLINE_REPLY = 7900;

export function replyMessage(id: string, outcome: ExecutionOutcome): string {
  const msg = JSON.stringify(outcome.ok ? { id, ok: true, response: outcome.response } : { id, ok: false, error: { code: outcome.error.code, message: outcome.error.message } });
  return Buffer.byteLength(msg) <= MAX_INLINE_REPLY ? msg : JSON.stringify({ id, stored: true });
}

/** Sync rows run once; others retry until max_attempts with the row's (or the default) policy. */
export const willRetry = (f: Finished) => !f.outcome.ok && f.row.kind !== "http_sync" && f.row.attempts < f.row.max_attempts;

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
 * Completes a batch of executions in ONE statement (one round trip, atomic): final ones leave
 * the outbox, are recorded, and their sync callers get the reply by NOTIFY (sent at commit), or,
 * if the caller left, the result is kept as an abandoned execution; failed ones with attempts
 * left go back with a backoff delay. A row is touched only while it still carries the claim it
 * was run under (claimer and attempt number): a claim the sweeper took back and handed out
 * again is no longer ours.
 */
export async function completeBatch(db: Tx, items: Finished[], config: Config, onExhausted?: ExhaustedHandler, effects?: CompletionEffects): Promise<void> {
  const effectful = effects?.pending(items.filter((f) => f.outcome.ok)) ?? [];
  if (!effectful.length) return completeStatement(db, items, config, onExhausted);
  await db.transaction(async (tx) => {
    // Lock the rows still ours first: their effects and their completion commit together.
    const ours = new Set(await tx.anyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT o.id FROM outbox o, (SELECT ${claims(effectful)}) AS b WHERE ${stillClaimed("b")} FOR UPDATE OF o`));
    await effects!.commit(tx, effectful.filter((f) => ours.has(f.row.id)));
    await completeStatement(tx, items, config, onExhausted);
  });
}

/**
 * A batch travels as one row of arrays, an entry per item (one statement text for any batch:
 * prepared once). Its rows are found as `o.id = ANY(ids)` on the primary key, and each is checked
 * against its own entry (array_position) rather than joined to an unnest(): a generic plan for
 * the join, made while the outbox was small, scanned the whole table (or the outbox_claimed
 * index, dead entries and all) on every completion, ~160 buffers a batch once it had churned.
 * `IS NOT DISTINCT FROM` (the same as = here: a claim's claimer is never null) keeps that
 * partial index, which `claimed_by = ...` would imply, out of the plan.
 */
const claimValues = (fs: Finished[]) => [fs.map((f) => f.row.id), fs.map((f) => f.row.claimed_by), fs.map((f) => f.row.attempts)] as const;
const claims = (fs: Finished[]) => {
  const [ids, claimers, attempts] = claimValues(fs);
  return sql.fragment`${sql.array(ids, "uuid")} AS ids, ${sql.array(claimers, "text")} AS claimers, ${sql.array(attempts, "int4")} AS attempts`;
};
/** Batch `b`'s entry in `column` for outbox row `o`. */
const entry = (b: string, column: string) => sql.fragment`${sql.identifier([b, column])}[array_position(${sql.identifier([b, "ids"])}, o.id)]`;
/** Outbox rows `o` of batch `b` that still carry the claim they ran under (claimer and attempt). */
const stillClaimed = (b: string) =>
  sql.fragment`o.id = ANY(${sql.identifier([b, "ids"])}) AND o.claimed_by IS NOT DISTINCT FROM ${entry(b, "claimers")} AND o.attempts = ${entry(b, "attempts")}`;

/** What a completion statement sends: its text is fixed, a batch travels as these arrays. */
type Completion = {
  retries: Finished[];
  delays: number[];
  errors: string[];
  finals: Finished[];
  replies: string[];
  executions: string;
};

function completion(items: Finished[], config: Config): Completion {
  const retries = items.filter(willRetry);
  const finals = items.filter((f) => !willRetry(f));
  const policy = { backoff: config.retryBackoff, base_ms: config.retryBaseMs, jitter_pct: config.retryJitterPct };
  return {
    retries,
    delays: retries.map((f) => retryDelayMs(f.row.retry ?? policy, f.row.attempts)),
    errors: retries.map((f) => jsonbText(JSON.stringify(f.outcome.ok ? null : f.outcome.error))),
    finals,
    replies: finals.map((f) => replyMessage(f.row.id, f.outcome)),
    executions: jsonbText(executionsJson(finals.map(toExecution))),
  };
}

const completionStatement = (c: Completion) => sql.unsafe`
    WITH retried AS (
      UPDATE outbox o SET claimed_by = NULL, lease_until = NULL, run_at = now() + ${entry("r", "delays")} * interval '1 millisecond',
        last_error = ${entry("r", "errors")}, first_failed_at = coalesce(o.first_failed_at, now())
      FROM (SELECT ${claims(c.retries)}, ${sql.array(c.delays, "int4")} AS delays, ${sql.array(c.errors, "jsonb")} AS errors) AS r
      WHERE ${stillClaimed("r")}
      RETURNING o.id),
    gone AS (
      DELETE FROM outbox o USING (SELECT ${claims(c.finals)}, ${sql.array(c.replies, "text")} AS replies) AS f
      WHERE ${stillClaimed("f")}
      RETURNING o.id, o.abandoned, o.reply_to, o.payload, ${entry("f", "replies")} AS reply),
    finished AS (SELECT x.* FROM ${executionsFrom(c.executions)}),
    recorded AS (${insertExecutions(sql.fragment`finished x JOIN gone g ON g.id = x.id`)}),
    kept AS (${insertAbandoned(sql.fragment`finished x JOIN gone g ON g.id = x.id AND g.abandoned`, sql.fragment`g.payload->'request'`)}),
    replied AS (SELECT pg_notify(g.reply_to, g.reply) FROM gone g WHERE g.reply_to IS NOT NULL AND NOT g.abandoned)
    SELECT g.id, (SELECT count(*) FROM replied) AS replies FROM gone g`;

/** The completion on the prepared pool: its values in the text's order, without a slonik token per batch. */
const complete = fixedStatement(completionStatement, (c: Completion) => [
  ...claimValues(c.retries), c.delays, c.errors,
  ...claimValues(c.finals), c.replies,
  c.executions,
]);

async function completeStatement(db: Tx, items: Finished[], config: Config, onExhausted?: ExhaustedHandler): Promise<void> {
  const c = completion(items, config);
  const finals = c.finals;
  const exhausted = finals.filter((f) => !f.outcome.ok && f.row.kind !== "http_sync");
  if (!onExhausted || !exhausted.length) {
    // Its text does not depend on the batch (arrays), so it is prepared once per connection.
    await complete(db, c);
    return;
  }
  await db.transaction(async (tx) => {
    const gone = new Set((await tx.any(completionStatement(c))).map((r) => (r as { id: string }).id));
    const ours = exhausted.filter((f) => gone.has(f.row.id));
    if (ours.length) await onExhausted(tx, ours);
  });
}
