// Dead letters (SPEC section 6): an outbox row whose last attempt failed, written in the
// transaction that removes it from the outbox (the outbox's exhausted-attempts seam), firing the
// app's dead-letter triggers in the same transaction. A failing dead-letter handler never makes
// a dead letter: the one it handled is marked handler_failed. Replay enqueues the original
// again (same lineage and depth); resolve marks it ignored. dead_letters belongs to this folder.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Config } from "../config.ts";
import { sql, type Db } from "../db/pool.ts";
import { ConflictError, NotFoundError, ValidationError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import * as metrics from "../metrics/index.ts";
import { enqueue } from "../outbox/enqueue.ts";
import type { ExhaustedHandler, Finished } from "../outbox/complete.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";
import { fireDeadLetterTriggers, type TriggerEnv } from "../triggers/fire.ts";
import { defaultPolicy } from "../triggers/policy.ts";

export const RESOLUTIONS = ["replayed", "ignored", "handler_failed"] as const;
/** List filters: a resolution, `none` (open and untouched), or `unresolved` (none or handler_failed: what /count counts). */
export const RESOLUTION_FILTERS = ["unresolved", "none", ...RESOLUTIONS] as const;
export type ResolutionFilter = (typeof RESOLUTION_FILTERS)[number];

export const deadLetterRow = z.object({
  id: z.string(),
  app_id: z.string(),
  execution_id: z.string(),
  kind: z.string(),
  script_id: z.string().nullable(),
  trigger_id: z.string().nullable(),
  route_id: z.string().nullable(),
  payload: z.record(z.unknown()),
  attempts: z.number(),
  max_attempts: z.number(),
  retry: z.record(z.unknown()).nullable(),
  last_error: z.unknown(),
  handler_error: z.unknown(),
  trigger_depth: z.number(),
  root_execution_id: z.string().nullable(),
  first_failed_at: z.string(),
  last_failed_at: z.string(),
  resolution: z.enum(RESOLUTIONS).nullable(),
  resolved_by: z.string().nullable(),
  resolved_at: z.string().nullable(),
  replay_execution_id: z.string().nullable(),
  created_at: z.string(),
});
export type DeadLetter = z.infer<typeof deadLetterRow>;
const COLUMNS = sql.fragment`id, app_id, execution_id, kind, script_id, trigger_id, route_id, payload, attempts, max_attempts, retry, last_error,
  handler_error, trigger_depth, root_execution_id, first_failed_at, last_failed_at, resolution, resolved_by, resolved_at, replay_execution_id, created_at`;
const OPEN = sql.fragment`(resolution IS NULL OR resolution = 'handler_failed')`;

/** What a dead-letter trigger's script gets as ctx.event. */
export function deadLetterEvent(d: DeadLetter): Record<string, unknown> {
  return {
    type: "dead_letter",
    dead_letter_id: d.id,
    original: {
      execution_id: d.execution_id,
      kind: d.kind,
      script_id: d.script_id,
      trigger_id: d.trigger_id,
      route_id: d.route_id,
      payload: d.payload,
      trigger_depth: d.trigger_depth,
      root_execution_id: d.root_execution_id,
    },
    attempts: d.attempts,
    last_error: d.last_error,
    first_failed_at: d.first_failed_at,
    last_failed_at: d.last_failed_at,
  };
}

/**
 * The outbox's exhausted-attempts seam: dead letters for rows whose last attempt failed (and the
 * dead-letter triggers they fire), or, for a failed dead-letter handler, the handled dead letter
 * marked handler_failed.
 */
export function recordExhausted(env: TriggerEnv): ExhaustedHandler {
  return async (tx, items) => {
    const handlers = items.filter((f) => f.row.kind === "dead_letter");
    const letters = items.filter((f) => f.row.kind !== "dead_letter");
    if (handlers.length) await markHandlerFailed(tx, handlers);
    for (const f of handlers) metrics.countAfterCommit(f.row.id, () => metrics.deadLetterHandlerFailures.inc());
    if (!letters.length) return;
    const json = JSON.stringify(
      letters.map((f) => ({
        execution_id: f.row.id,
        app_id: f.row.app_id,
        kind: f.row.kind,
        script_id: f.row.script_id,
        trigger_id: f.row.trigger_id,
        route_id: f.row.route_id,
        payload: f.row.payload,
        attempts: f.row.attempts,
        max_attempts: f.row.max_attempts,
        retry: f.row.retry,
        last_error: f.outcome.ok ? null : f.outcome.error,
        trigger_depth: f.row.trigger_depth,
        root_execution_id: f.row.root_execution_id,
        first_failed_at: f.row.first_failed_at,
      })),
    );
    const written = await tx.any(sql.type(deadLetterRow)`
      INSERT INTO dead_letters (execution_id, app_id, kind, script_id, trigger_id, route_id, payload, attempts, max_attempts, retry, last_error,
                                trigger_depth, root_execution_id, first_failed_at, last_failed_at)
      SELECT x.execution_id, x.app_id, x.kind, s.id, x.trigger_id, x.route_id, x.payload, x.attempts, x.max_attempts, x.retry,
             coalesce(x.last_error, '{"code":"internal","message":"failed"}'), x.trigger_depth, x.root_execution_id, coalesce(x.first_failed_at, now()), now()
      FROM jsonb_to_recordset(${json}::jsonb) AS x(execution_id uuid, app_id uuid, kind text, script_id uuid, trigger_id uuid, route_id uuid, payload jsonb,
           attempts int, max_attempts int, retry jsonb, last_error jsonb, trigger_depth int, root_execution_id uuid, first_failed_at timestamptz)
      LEFT JOIN scripts s ON s.id = x.script_id
      RETURNING ${COLUMNS}`);
    for (const d of written) metrics.countAfterCommit(d.execution_id, () => metrics.deadLettersWritten.inc({ kind: d.kind }));
    await fireDeadLetterTriggers(
      tx,
      written.map((d) => ({
        appId: d.app_id,
        event: deadLetterEvent(d),
        cause: { depth: d.trigger_depth + 1, rootExecutionId: d.root_execution_id ?? d.execution_id, executionId: d.execution_id, scriptId: d.script_id },
      })),
      env,
    );
  };
}

/** A dead-letter handler ran out of attempts: the dead letter it handled (still open) is marked, with the handler's error. */
async function markHandlerFailed(tx: Pick<Db, "query">, handlers: Finished[]): Promise<void> {
  const marks = handlers.flatMap((f) => {
    const id = (f.row.payload.event as { dead_letter_id?: unknown } | undefined)?.dead_letter_id;
    return typeof id === "string" && isUuid(id) ? [{ id, app_id: f.row.app_id, error: f.outcome.ok ? null : f.outcome.error }] : [];
  });
  if (!marks.length) return;
  await tx.query(sql.unsafe`
    UPDATE dead_letters d SET resolution = 'handler_failed', handler_error = x.error
    FROM jsonb_to_recordset(${JSON.stringify(marks)}::jsonb) AS x(id uuid, app_id uuid, error jsonb)
    WHERE d.id = x.id AND d.app_id = x.app_id AND d.resolution IS NULL`);
}

// ---- reading ----

export function parseResolution(raw: unknown): ResolutionFilter | undefined {
  if (raw === undefined || raw === null || raw === "" || raw === "all") return undefined;
  if (typeof raw === "string" && (RESOLUTION_FILTERS as readonly string[]).includes(raw)) return raw as ResolutionFilter;
  throw new ValidationError("resolution", `must be one of all, ${RESOLUTION_FILTERS.join(", ")}`);
}

/** An app's dead letters, newest first, optionally by resolution. */
export async function listDeadLetters(db: Pick<Db, "any">, appId: string, opts: PageRequest & { resolution?: ResolutionFilter | undefined }): Promise<Page<DeadLetter>> {
  const [at, id] = decodeKey(opts.cursor, "string", "uuid") ?? [null, null];
  const r = opts.resolution;
  const filter =
    r === undefined ? sql.fragment`true` : r === "unresolved" ? OPEN : r === "none" ? sql.fragment`resolution IS NULL` : sql.fragment`resolution = ${r}`;
  const rows = await db.any(sql.type(deadLetterRow.extend({ cursor_key: z.string() }))`
    SELECT ${COLUMNS}, ${preciseTimestamp("created_at")} AS cursor_key FROM dead_letters
    WHERE app_id = ${appId} AND ${filter}
      AND (${at}::timestamptz IS NULL OR (created_at, id) < (${at}::timestamptz, ${id}::uuid))
    ORDER BY created_at DESC, id DESC
    LIMIT ${opts.limit + 1}`);
  return pageOf(rows, opts.limit, withoutCursorKey, (x) => [x.cursor_key, x.id]);
}

export async function countUnresolved(db: Pick<Db, "oneFirst">, appId: string): Promise<number> {
  return Number(await db.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM dead_letters WHERE app_id = ${appId} AND ${OPEN}`));
}

/** Unresolved dead letters per app, for a list of apps in one query (apps with none are absent). */
export async function countUnresolvedByApp(db: Pick<Db, "any">, appIds: readonly string[]): Promise<Map<string, number>> {
  if (!appIds.length) return new Map();
  const rows = await db.any(sql.type(z.object({ app_id: z.string(), n: z.number() }))`
    SELECT app_id, count(*)::int AS n FROM dead_letters WHERE app_id = ANY(${sql.array([...appIds], "uuid")}) AND ${OPEN} GROUP BY app_id`);
  return new Map(rows.map((r) => [r.app_id, r.n]));
}

/** The dead letters of one lineage (the same root execution), oldest first: a dead letter's error history across replays. */
export async function deadLetterLineage(db: Pick<Db, "any">, appId: string, rootExecutionId: string, limit = 50): Promise<readonly DeadLetter[]> {
  return db.any(sql.type(deadLetterRow)`
    SELECT ${COLUMNS} FROM dead_letters WHERE app_id = ${appId} AND root_execution_id = ${rootExecutionId}
    ORDER BY created_at, id LIMIT ${limit}`);
}

export async function getDeadLetter(db: Pick<Db, "maybeOne">, appId: string, id: string): Promise<DeadLetter> {
  if (!isUuid(id)) throw new NotFoundError("dead letter");
  const row = await db.maybeOne(sql.type(deadLetterRow)`SELECT ${COLUMNS} FROM dead_letters WHERE id = ${id} AND app_id = ${appId}`);
  if (!row) throw new NotFoundError("dead letter");
  return row;
}

// ---- acting ----

async function lockOpen(tx: Pick<Db, "maybeOne">, appId: string, id: string, action: string): Promise<DeadLetter> {
  if (!isUuid(id)) throw new NotFoundError("dead letter");
  const row = await tx.maybeOne(sql.type(deadLetterRow)`SELECT ${COLUMNS} FROM dead_letters WHERE id = ${id} AND app_id = ${appId} FOR UPDATE`);
  if (!row) throw new NotFoundError("dead letter");
  if (row.resolution === "replayed" || row.resolution === "ignored") throw new ConflictError(`cannot ${action} dead letter ${id}: it is already ${row.resolution}`);
  return row;
}

export type ReplayOptions = {
  /** Who asks (null: an execution that runs as no one cannot get here; kept for the record). */
  by: string | null;
  config: Pick<Config, "retryMaxAttempts" | "retryBackoff" | "retryBaseMs" | "retryJitterPct" | "maxTriggerDepth">;
  /**
   * The depth of the new row at least (a script replaying from inside a chain: its depth + 1,
   * so a handler that keeps replaying what keeps failing runs into the depth limit).
   */
  minDepth?: number;
};

/**
 * Enqueues the dead letter's original again, as a `replay` row keeping its lineage (root
 * execution) and depth, its trigger and its retry policy; the dead letter becomes `replayed`,
 * pointing at the new execution. One transaction.
 */
export async function replayDeadLetter(db: Pick<Db, "transaction">, appId: string, id: string, opts: ReplayOptions): Promise<DeadLetter> {
  return db.transaction(async (tx) => {
    const d = await lockOpen(tx, appId, id, "replay");
    if (!d.script_id) throw new ConflictError(`cannot replay dead letter ${id}: its script was deleted`);
    const depth = Math.max(d.trigger_depth, opts.minDepth ?? 0);
    if (depth > opts.config.maxTriggerDepth) throw new ConflictError(`cannot replay dead letter ${id}: it would run at trigger depth ${depth}, past the maximum of ${opts.config.maxTriggerDepth}`);
    const stored = z.object({ backoff: z.enum(["exponential", "linear", "constant"]), base_ms: z.number(), jitter_pct: z.number() }).safeParse(d.retry);
    const policy = stored.success ? { max_attempts: d.max_attempts, ...stored.data } : { ...defaultPolicy(opts.config), max_attempts: d.max_attempts };
    const executionId = randomUUID();
    await enqueue(tx, [
      {
        id: executionId,
        kind: "replay",
        appId,
        scriptId: d.script_id,
        routeId: d.route_id,
        triggerId: d.trigger_id,
        payload: d.payload as { request?: unknown; event?: unknown },
        retry: policy,
        triggerDepth: depth,
        rootExecutionId: d.root_execution_id ?? d.execution_id,
      },
    ]);
    return tx.one(sql.type(deadLetterRow)`
      UPDATE dead_letters SET resolution = 'replayed', resolved_by = ${opts.by}, resolved_at = now(), replay_execution_id = ${executionId}
      WHERE id = ${id} RETURNING ${COLUMNS}`);
  });
}

/** Marks the dead letter `ignored`, with who and when. */
export async function resolveDeadLetter(db: Pick<Db, "transaction">, appId: string, id: string, by: string | null): Promise<DeadLetter> {
  return db.transaction(async (tx) => {
    await lockOpen(tx, appId, id, "resolve");
    return tx.one(sql.type(deadLetterRow)`
      UPDATE dead_letters SET resolution = 'ignored', resolved_by = ${by}, resolved_at = now() WHERE id = ${id} RETURNING ${COLUMNS}`);
  });
}

/** Retention (the sweeper): dead letters written more than `days` ago, at most `limit` per call (by their time index). */
export async function deleteOldDeadLetters(db: Pick<Db, "query">, days: number, limit = 5000): Promise<number> {
  const r = await db.query(sql.unsafe`
    DELETE FROM dead_letters WHERE id = ANY(ARRAY(
      SELECT id FROM dead_letters WHERE created_at < now() - ${days} * interval '1 day' LIMIT ${limit}))`);
  return r.rowCount;
}
