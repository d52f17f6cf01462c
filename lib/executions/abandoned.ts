import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";

/**
 * Sync executions that completed after their caller stopped waiting, kept with their result:
 * an INSERT over rows carrying the columns of `executionsFrom` as x.*, and `request`.
 */
export const insertAbandoned = (from: ReturnType<typeof sql.fragment>, request: ReturnType<typeof sql.fragment>) => sql.fragment`
  INSERT INTO abandoned_executions (id, app_id, script_id, route_id, request, status, response, error, queued_at)
  SELECT x.id, x.app_id, x.script_id, x.route_id, coalesce(${request}, 'null'::jsonb), x.status, x.response, x.error, x.queued_at
  FROM ${from}
  ON CONFLICT (id) DO NOTHING`;

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
