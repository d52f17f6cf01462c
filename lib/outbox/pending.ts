import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import type { Execution } from "../executions/index.ts";
import { isUuid } from "../ids.ts";

/** An execution still in the outbox, shaped like a recorded one: queued, or running while claimed. */
export async function findPendingExecution(db: Db, id: string): Promise<Execution | null> {
  if (!isUuid(id)) return null;
  const row = await db.maybeOne(sql.type(z.object({
    id: z.string(), app_id: z.string(), script_id: z.string(), kind: z.string(), claimed: z.boolean(), route_id: z.string().nullable(),
    trigger_id: z.string().nullable(), trigger_depth: z.number(), root_execution_id: z.string().nullable(), attempts: z.number(),
    created_at: z.string(), last_error: z.unknown(), run_at: z.string(),
  }))`
    SELECT id, app_id, script_id, kind, claimed_by IS NOT NULL AS claimed, route_id, trigger_id, trigger_depth, root_execution_id,
           attempts, created_at, last_error, run_at
    FROM outbox WHERE id = ${id}`);
  if (!row) return null;
  return {
    id: row.id,
    app_id: row.app_id,
    script_id: row.script_id,
    kind: row.kind,
    status: row.claimed ? "running" : "queued",
    route_id: row.route_id,
    trigger_id: row.trigger_id,
    trigger_depth: row.trigger_depth,
    root_execution_id: row.root_execution_id,
    attempts: row.attempts,
    queued_at: row.created_at,
    started_at: null,
    finished_at: null,
    duration_ms: null,
    response: null,
    error: row.last_error ?? null,
    logs: [],
  };
}
