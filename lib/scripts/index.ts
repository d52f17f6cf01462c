import { UniqueIntegrityConstraintViolationError } from "slonik";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { ConflictError, InvalidScriptError, NotFoundError } from "../errors.ts";
import { checkSource } from "../executor/index.ts";
import { isUuid } from "../ids.ts";
import { decodeKey, pageOf, type Page, type PageRequest } from "../pagination.ts";
import { goneAs, notifyRoutesChanged } from "../routes/index.ts";

export const scriptRow = z.object({
  id: z.string(),
  app_id: z.string(),
  name: z.string(),
  source: z.string(),
  version: z.number(),
  timeout_ms: z.number(),
  memory_mb: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type Script = z.infer<typeof scriptRow>;
const COLUMNS = sql.fragment`id, app_id, name, source, version, timeout_ms, memory_mb, created_at, updated_at`;

function mustCompile(source: string): void {
  const r = checkSource(source);
  if (!r.ok) throw new InvalidScriptError(r.message);
}

export async function createScript(db: Db, appId: string, input: { name: string; source: string; timeout_ms?: number | undefined; memory_mb?: number | undefined }): Promise<Script> {
  mustCompile(input.source);
  const row = await goneAs("app", db.maybeOne(sql.type(scriptRow)`
    INSERT INTO scripts (app_id, name, source, timeout_ms, memory_mb)
    VALUES (${appId}, ${input.name}, ${input.source}, ${input.timeout_ms ?? 5000}, ${input.memory_mb ?? 32})
    ON CONFLICT (app_id, name) DO NOTHING
    RETURNING ${COLUMNS}`));
  if (!row) throw new ConflictError(`a script named ${input.name} exists in this app`);
  return row;
}

export type ScriptChanges = { name?: string | undefined; source?: string | undefined; timeout_ms?: number | undefined; memory_mb?: number | undefined };

/** Changing source or limits bumps the version (executors cache by id + version). */
export async function updateScript(db: Db, id: string, input: ScriptChanges): Promise<Script> {
  if (input.source !== undefined) mustCompile(input.source);
  const bump = input.source !== undefined || input.timeout_ms !== undefined || input.memory_mb !== undefined;
  try {
    return await db.transaction(async (tx) => {
      const row = await tx.maybeOne(sql.type(scriptRow)`
        UPDATE scripts SET
          name = coalesce(${input.name ?? null}, name),
          source = coalesce(${input.source ?? null}, source),
          timeout_ms = coalesce(${input.timeout_ms ?? null}::int, timeout_ms),
          memory_mb = coalesce(${input.memory_mb ?? null}::int, memory_mb),
          version = version + ${bump ? 1 : 0},
          updated_at = now()
        WHERE id = ${id}
        RETURNING ${COLUMNS}`);
      if (!row) throw new NotFoundError("script");
      // Route tables carry the script's name, source and limits to the gateways.
      await notifyRoutesChanged(tx);
      return row;
    });
  } catch (err) {
    if (err instanceof UniqueIntegrityConstraintViolationError) throw new ConflictError(`a script named ${input.name} exists in this app`);
    throw err;
  }
}

/** The script and its app id; the caller checks access to the app. */
export async function getScript(db: Pick<Db, "maybeOne">, id: string): Promise<Script> {
  if (!isUuid(id)) throw new NotFoundError("script");
  const row = await db.maybeOne(sql.type(scriptRow)`SELECT ${COLUMNS} FROM scripts WHERE id = ${id}`);
  if (!row) throw new NotFoundError("script");
  return row;
}

/** An app's scripts without their source, ordered by name. */
export async function listScripts(db: Db, appId: string, page: PageRequest): Promise<Page<Omit<Script, "source">>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(scriptRow.omit({ source: true }))`
    SELECT id, app_id, name, version, timeout_ms, memory_mb, created_at, updated_at FROM scripts
    WHERE app_id = ${appId} AND (${after}::text IS NULL OR name > ${after})
    ORDER BY name LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => r, (r) => [r.name]);
}

/** The names of an app's scripts by id, in one query (for lists that carry script ids). */
export async function scriptNames(db: Pick<Db, "any">, appId: string, ids: readonly (string | null)[]): Promise<Map<string, string>> {
  const wanted = [...new Set(ids.filter((id): id is string => id !== null && isUuid(id)))];
  if (!wanted.length) return new Map();
  const rows = await db.any(sql.type(z.object({ id: z.string(), name: z.string() }))`
    SELECT id, name FROM scripts WHERE app_id = ${appId} AND id = ANY(${sql.array(wanted, "uuid")})`);
  return new Map(rows.map((r) => [r.id, r.name]));
}

export async function deleteScript(db: Db, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(sql.unsafe`DELETE FROM scripts WHERE id = ${id}`);
    await notifyRoutesChanged(tx);
  });
}
