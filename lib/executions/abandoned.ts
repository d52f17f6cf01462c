import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";
import type { FinishedExecution } from "./index.ts";

/** Sync executions that completed after their caller stopped waiting, kept with their result. */
export async function recordAbandoned(db: Pick<Db, "query">, rows: (FinishedExecution & { request: unknown })[]): Promise<void> {
  if (!rows.length) return;
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      app_id: r.appId,
      script_id: r.scriptId,
      route_id: r.routeId ?? null,
      request: r.request ?? null,
      status: r.error ? "failed" : "succeeded",
      response: r.response ?? null,
      error: r.error ?? null,
      queued_at: r.queuedAt.toISOString(),
    })),
  );
  await db.query(sql.unsafe`
    INSERT INTO abandoned_executions (id, app_id, script_id, route_id, request, status, response, error, queued_at)
    SELECT id, app_id, script_id, route_id, coalesce(request, 'null'::jsonb), status, response, error, queued_at
    FROM jsonb_to_recordset(${json}::jsonb) AS x(id uuid, app_id uuid, script_id uuid, route_id uuid, request jsonb, status text, response jsonb, error jsonb, queued_at timestamptz)
    ON CONFLICT (id) DO NOTHING`);
}

const abandonedRow = z.object({
  id: z.string(),
  app_id: z.string(),
  script_id: z.string().nullable(),
  route_id: z.string().nullable(),
  request: z.unknown(),
  status: z.string(),
  response: z.unknown(),
  error: z.unknown(),
  queued_at: z.string(),
  completed_at: z.string(),
});
export type AbandonedExecution = z.infer<typeof abandonedRow>;

export async function listAbandoned(db: Db, appId: string, page: PageRequest): Promise<Page<AbandonedExecution>> {
  const [at, id] = decodeKey(page.cursor, "string", "uuid") ?? [null, null];
  const rows = await db.any(sql.type(abandonedRow.extend({ cursor_key: z.string() }))`
    SELECT id, app_id, script_id, route_id, request, status, response, error, queued_at, completed_at,
           ${preciseTimestamp("completed_at")} AS cursor_key
    FROM abandoned_executions
    WHERE app_id = ${appId}
      AND (${at}::timestamptz IS NULL OR (completed_at, id) < (${at}::timestamptz, ${id}::uuid))
    ORDER BY completed_at DESC, id DESC LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}
