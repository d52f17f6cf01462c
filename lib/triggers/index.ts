// Triggers of an app: a script run for each matching KV write (kind "kv") or each new dead letter
// of the app (kind "dead_letter"). Firing them is in fire.ts; the retry policy in policy.ts.
import { ForeignKeyIntegrityConstraintViolationError } from "slonik";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";
import type { RetryOverride } from "./policy.ts";

export * from "./policy.ts";
export * from "./fire.ts";

export const KV_OPS = ["insert", "update", "delete"] as const;
export type KvOp = (typeof KV_OPS)[number];
export type TriggerKind = "kv" | "dead_letter";

export const triggerRow = z.object({
  id: z.string(),
  app_id: z.string(),
  script_id: z.string(),
  kind: z.enum(["kv", "dead_letter"]),
  collection_glob: z.string().nullable(),
  ops: z.array(z.enum(KV_OPS)).nullable(),
  retry: z.record(z.unknown()).nullable(),
  enabled: z.boolean(),
  created_by: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Trigger = z.infer<typeof triggerRow>;
const COLUMNS = sql.fragment`id, app_id, script_id, kind, collection_glob, ops, retry, enabled, created_by, created_at, updated_at`;

/**
 * A collection glob: `*` (every collection), `prefix*` (names starting with prefix) or an exact
 * name. A `*` anywhere but at the end is refused: it would read as a pattern we do not match.
 */
export function globProblem(glob: string): string | null {
  if (glob === "") return "must not be empty";
  if (glob.includes("\u0000")) return "must not contain the NUL character";
  if (Buffer.byteLength(glob) > 256) return "must be at most 256 bytes";
  if (glob.slice(0, -1).includes("*")) return "may hold * only as its last character (*, prefix*, or an exact name)";
  return null;
}

/** Whether a collection name matches a glob (the same rule as the SQL in fire.ts). */
export function globMatches(glob: string, collection: string): boolean {
  if (glob === "*") return true;
  if (glob.endsWith("*")) return collection.startsWith(glob.slice(0, -1));
  return glob === collection;
}

export type NewTrigger =
  | { kind: "kv"; scriptId: string; collectionGlob: string; ops: KvOp[]; retry?: RetryOverride | undefined }
  | { kind: "dead_letter"; scriptId: string; retry?: RetryOverride | undefined };

/** Creates a trigger of `appId` running `scriptId` (which must be a script of that app) as `userId`. */
export async function createTrigger(db: Pick<Db, "maybeOne">, appId: string, userId: string, input: NewTrigger): Promise<Trigger> {
  if (!isUuid(input.scriptId)) throw new ValidationError("script_id", "must be a script id");
  if (input.kind === "kv") {
    const bad = globProblem(input.collectionGlob);
    if (bad) throw new ValidationError("collection_glob", bad);
  }
  const row = await db
    .maybeOne(sql.type(triggerRow)`
    INSERT INTO triggers (app_id, script_id, kind, collection_glob, ops, retry, created_by)
    SELECT s.app_id, s.id, ${input.kind},
           ${input.kind === "kv" ? input.collectionGlob : null}::text,
           ${input.kind === "kv" ? sql.array([...new Set(input.ops)], "text") : null}::text[],
           ${input.retry && Object.keys(input.retry).length ? sql.jsonb(input.retry) : null}::jsonb,
           ${userId}
    FROM scripts s WHERE s.id = ${input.scriptId} AND s.app_id = ${appId}
    RETURNING ${COLUMNS}`)
    .catch((err: unknown) => {
      // the script (or its app) was deleted while this was written
      if (err instanceof ForeignKeyIntegrityConstraintViolationError) return null;
      throw err;
    });
  // Another app's script is "not a script of this app": nothing said about whether it exists.
  if (!row) throw new ValidationError("script_id", "is not a script of this app");
  return row;
}

export async function getTrigger(db: Pick<Db, "maybeOne">, appId: string, id: string): Promise<Trigger> {
  if (!isUuid(id)) throw new NotFoundError("trigger");
  const row = await db.maybeOne(sql.type(triggerRow)`SELECT ${COLUMNS} FROM triggers WHERE id = ${id} AND app_id = ${appId}`);
  if (!row) throw new NotFoundError("trigger");
  return row;
}

/** An app's triggers, oldest first, optionally of one kind. */
export async function listTriggers(db: Pick<Db, "any">, appId: string, opts: PageRequest & { kind?: TriggerKind | undefined }): Promise<Page<Trigger>> {
  const [at, id] = decodeKey(opts.cursor, "string", "uuid") ?? [null, null];
  const rows = await db.any(sql.type(triggerRow.extend({ cursor_key: z.string() }))`
    SELECT ${COLUMNS}, ${preciseTimestamp("created_at")} AS cursor_key FROM triggers
    WHERE app_id = ${appId} AND (${opts.kind ?? null}::text IS NULL OR kind = ${opts.kind ?? null})
      AND (${at}::timestamptz IS NULL OR (created_at, id) > (${at}::timestamptz, ${id}::uuid))
    ORDER BY created_at, id
    LIMIT ${opts.limit + 1}`);
  return pageOf(rows, opts.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}

export async function setTriggerEnabled(db: Pick<Db, "maybeOne">, appId: string, id: string, enabled: boolean): Promise<Trigger> {
  if (!isUuid(id)) throw new NotFoundError("trigger");
  const row = await db.maybeOne(sql.type(triggerRow)`
    UPDATE triggers SET enabled = ${enabled}, updated_at = now() WHERE id = ${id} AND app_id = ${appId} RETURNING ${COLUMNS}`);
  if (!row) throw new NotFoundError("trigger");
  return row;
}

/** Deletes a trigger. Rows it already enqueued still run; its dead letters stay. */
export async function deleteTrigger(db: Pick<Db, "query">, appId: string, id: string): Promise<void> {
  if (!isUuid(id)) throw new NotFoundError("trigger");
  const r = await db.query(sql.unsafe`DELETE FROM triggers WHERE id = ${id} AND app_id = ${appId}`);
  if (r.rowCount === 0) throw new NotFoundError("trigger");
}

/** Trigger rows dropped for depth, per app (SPEC: "a warning and a metric"). */
export async function triggerStats(db: Pick<Db, "maybeOne">, appId: string): Promise<{ depth_exceeded: number; last_dropped_at: string | null; last_root_execution_id: string | null }> {
  const row = await db.maybeOne(sql.type(z.object({ depth_exceeded: z.number(), last_dropped_at: z.string().nullable(), last_root_execution_id: z.string().nullable() }))`
    SELECT depth_exceeded::float8 AS depth_exceeded, last_dropped_at, last_root_execution_id FROM trigger_drops WHERE app_id = ${appId}`);
  return row ?? { depth_exceeded: 0, last_dropped_at: null, last_root_execution_id: null };
}
