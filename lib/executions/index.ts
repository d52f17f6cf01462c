import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import type { ExecError, LogLine, ScriptResponse } from "../executor/index.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";

export type ExecutionKind = "direct" | "http_sync" | "http_async" | "kv" | "dead_letter" | "replay";
export type ExecutionStatus = "queued" | "running" | "succeeded" | "failed";

export const executionRow = z.object({
  id: z.string(),
  app_id: z.string(),
  script_id: z.string().nullable(),
  kind: z.string(),
  status: z.string(),
  route_id: z.string().nullable(),
  trigger_id: z.string().nullable(),
  trigger_depth: z.number(),
  root_execution_id: z.string().nullable(),
  attempts: z.number(),
  queued_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  response: z.unknown(),
  error: z.unknown(),
  logs: z.unknown(),
});
export type Execution = z.infer<typeof executionRow>;
const COLUMNS = sql.fragment`id, app_id, script_id, kind, status, route_id, trigger_id, trigger_depth, root_execution_id, attempts,
  queued_at, started_at, finished_at, duration_ms, response, error, logs`;

export type FinishedExecution = {
  id: string;
  appId: string;
  scriptId: string;
  kind: ExecutionKind;
  routeId?: string | null;
  triggerId?: string | null;
  triggerDepth: number;
  rootExecutionId?: string | null;
  attempts: number;
  queuedAt: Date;
  startedAt: Date;
  durationMs: number;
  response?: ScriptResponse;
  error?: ExecError;
  logs: LogLine[];
};

/** Records one finished execution (the direct-execute path; the dispatcher batches below). */
export async function recordExecution(db: Pick<Db, "query">, row: FinishedExecution): Promise<void> {
  await recordExecutions(db, [row]);
}

/** The JSON rows that `executionsFrom` reads: one per finished execution. */
export function executionsJson(rows: FinishedExecution[]): string {
  return JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      app_id: r.appId,
      script_id: r.scriptId,
      kind: r.kind,
      status: r.error ? "failed" : "succeeded",
      route_id: r.routeId ?? null,
      trigger_id: r.triggerId ?? null,
      trigger_depth: r.triggerDepth,
      root_execution_id: r.rootExecutionId ?? null,
      attempts: r.attempts,
      queued_at: r.queuedAt.toISOString(),
      started_at: r.startedAt.toISOString(),
      finished_at: new Date(r.startedAt.getTime() + r.durationMs).toISOString(),
      duration_ms: Math.round(r.durationMs),
      response: r.response ?? null,
      error: r.error ?? null,
      logs: r.logs,
    })),
  );
}

/** A FROM item over `executionsJson(...)` output, aliased `x`. */
export const executionsFrom = (json: string) => sql.fragment`jsonb_to_recordset(${json}::jsonb) AS x(id uuid, app_id uuid, script_id uuid,
  kind text, status text, route_id uuid, trigger_id uuid, trigger_depth int, root_execution_id uuid, attempts int, queued_at timestamptz,
  started_at timestamptz, finished_at timestamptz, duration_ms int, response jsonb, error jsonb, logs jsonb)`;

/** INSERT of executions from a query whose rows carry the columns of `executionsFrom` as x.*. */
export const insertExecutions = (from: ReturnType<typeof sql.fragment>) => sql.fragment`
  INSERT INTO executions (id, app_id, script_id, kind, status, route_id, trigger_id, trigger_depth, root_execution_id, attempts,
                          queued_at, started_at, finished_at, duration_ms, response, error, logs)
  SELECT x.id, x.app_id, x.script_id, x.kind, x.status, x.route_id, x.trigger_id, x.trigger_depth, x.root_execution_id, x.attempts,
         x.queued_at, x.started_at, x.finished_at, x.duration_ms, x.response, x.error, x.logs
  FROM ${from}
  ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts, started_at = excluded.started_at,
    finished_at = excluded.finished_at, duration_ms = excluded.duration_ms, response = excluded.response,
    error = excluded.error, logs = excluded.logs`;

/** Records finished executions (one row each); several at once in one statement. */
export async function recordExecutions(db: Pick<Db, "query">, rows: FinishedExecution[]): Promise<void> {
  if (!rows.length) return;
  await db.query(sql.unsafe`${insertExecutions(executionsFrom(executionsJson(rows)))}`);
}

export async function getExecution(db: Pick<Db, "maybeOne">, id: string): Promise<Execution | null> {
  if (!isUuid(id)) throw new NotFoundError("execution");
  return db.maybeOne(sql.type(executionRow)`SELECT ${COLUMNS} FROM executions WHERE id = ${id}`);
}

export type ExecutionFilter = PageRequest & { status?: string | undefined; scriptId?: string | undefined };

/** An app's executions, newest first, without their response and logs (GET one for those). */
export async function listExecutions(db: Db, appId: string, opts: ExecutionFilter): Promise<Page<Omit<Execution, "logs" | "response">>> {
  const [at, id] = decodeKey(opts.cursor, "string", "uuid") ?? [null, null];
  if (opts.status !== undefined && !["queued", "running", "succeeded", "failed"].includes(opts.status)) {
    throw new ValidationError("status", "must be one of queued, running, succeeded, failed");
  }
  if (opts.scriptId !== undefined && !isUuid(opts.scriptId)) throw new ValidationError("script_id", "must be a script id");
  const rows = await db.any(sql.type(executionRow.omit({ logs: true, response: true }).extend({ cursor_key: z.string() }))`
    SELECT id, app_id, script_id, kind, status, route_id, trigger_id, trigger_depth, root_execution_id, attempts,
           queued_at, started_at, finished_at, duration_ms, error, ${preciseTimestamp("queued_at")} AS cursor_key
    FROM executions
    WHERE app_id = ${appId}
      AND (${opts.status ?? null}::text IS NULL OR status = ${opts.status ?? null})
      AND (${opts.scriptId ?? null}::uuid IS NULL OR script_id = ${opts.scriptId ?? null})
      AND (${at}::timestamptz IS NULL OR (queued_at, id) < (${at}::timestamptz, ${id}::uuid))
    ORDER BY queued_at DESC, id DESC
    LIMIT ${opts.limit + 1}`);
  return pageOf(rows, opts.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}

/** The executions of one lineage (the same root execution) in an app, oldest first, without response and logs. */
export async function listLineage(db: Pick<Db, "any">, appId: string, rootExecutionId: string, limit = 50): Promise<readonly Omit<Execution, "logs" | "response">[]> {
  if (!isUuid(rootExecutionId)) return [];
  return db.any(sql.type(executionRow.omit({ logs: true, response: true }))`
    SELECT id, app_id, script_id, kind, status, route_id, trigger_id, trigger_depth, root_execution_id, attempts,
           queued_at, started_at, finished_at, duration_ms, error
    FROM executions WHERE app_id = ${appId} AND (root_execution_id = ${rootExecutionId} OR id = ${rootExecutionId})
    ORDER BY queued_at, id LIMIT ${limit}`);
}
