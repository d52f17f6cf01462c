import { ForeignKeyIntegrityConstraintViolationError } from "slonik";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";
import { compileRouteTable, normalizePath, routesConflict, type HostKind, type PathKind, type RouteTable } from "./match.ts";

export * from "./match.ts";

export const routeRow = z.object({
  id: z.string(),
  app_id: z.string(),
  script_id: z.string(),
  host_kind: z.enum(["any", "exact", "wildcard"]),
  host: z.string().nullable(),
  path_kind: z.enum(["exact", "prefix", "pattern"]),
  path: z.string(),
  methods: z.array(z.string()).nullable(),
  dispatch_mode: z.enum(["sync", "async"]),
  created_at: z.string(),
});
export type Route = z.infer<typeof routeRow>;
const COLUMNS = sql.fragment`id, app_id, script_id, host_kind, host, path_kind, path, methods, dispatch_mode, created_at`;

export type RouteInput = { host_kind: HostKind; host: string | null; path_kind: PathKind; path: string; methods: string[] | null; dispatch_mode: "sync" | "async" };

/** A write whose parent row was deleted meanwhile: "not found", not a 500. */
export async function goneAs<T>(what: string, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (err instanceof ForeignKeyIntegrityConstraintViolationError) throw new NotFoundError(what);
    throw err;
  }
}

/**
 * Refuses `def` when an existing route (of any app: the gateway matches globally) would match the
 * same requests. Call inside the writing transaction: the table lock makes check-then-write
 * atomic, so two conflicting routes cannot both pass.
 */
async function refuseConflicts(tx: Pick<Db, "query" | "any">, def: RouteInput, exceptId: string | null): Promise<void> {
  // SHARE ROW EXCLUSIVE conflicts with itself: route writers queue here; readers are not blocked.
  await tx.query(sql.unsafe`LOCK TABLE routes IN SHARE ROW EXCLUSIVE MODE`);
  const candidates = await tx.any(sql.type(routeRow)`
    SELECT ${COLUMNS} FROM routes
    WHERE host_kind = ${def.host_kind} AND coalesce(host, '') = ${def.host ?? ""} AND path_kind = ${def.path_kind}
      AND (${exceptId}::uuid IS NULL OR id <> ${exceptId}::uuid)`);
  const clash = candidates.find((r) => routesConflict(r, { ...def, id: "" }));
  if (clash) throw new ConflictError(`route ${clash.id} already matches these requests`);
}

/** Creates a route unless it conflicts with one of any app. */
export async function createRoute(db: Db, appId: string, scriptId: string, input: RouteInput): Promise<Route> {
  const def = { ...input, path: normalizePath(input.path) };
  return goneAs("script", db.transaction(async (tx) => {
    await refuseConflicts(tx, def, null);
    const row = await tx.one(sql.type(routeRow)`
      INSERT INTO routes (app_id, script_id, host_kind, host, path_kind, path, methods, dispatch_mode)
      VALUES (${appId}, ${scriptId}, ${def.host_kind}, ${def.host}, ${def.path_kind}, ${def.path},
              ${def.methods ? sql.array(def.methods, "text") : null}, ${def.dispatch_mode})
      RETURNING ${COLUMNS}`);
    await notifyRoutesChanged(tx);
    return row;
  }));
}

/** Replaces a route's definition (its script stays), with the same conflict check as creation. */
export async function updateRoute(db: Db, id: string, input: RouteInput): Promise<Route> {
  const def = { ...input, path: normalizePath(input.path) };
  return db.transaction(async (tx) => {
    await refuseConflicts(tx, def, id);
    const row = await tx.maybeOne(sql.type(routeRow)`
      UPDATE routes SET host_kind = ${def.host_kind}, host = ${def.host}, path_kind = ${def.path_kind}, path = ${def.path},
        methods = ${def.methods ? sql.array(def.methods, "text") : null}, dispatch_mode = ${def.dispatch_mode}
      WHERE id = ${id}
      RETURNING ${COLUMNS}`);
    if (!row) throw new NotFoundError("route");
    await notifyRoutesChanged(tx);
    return row;
  });
}

export async function getRoute(db: Pick<Db, "maybeOne">, id: string): Promise<Route> {
  if (!isUuid(id)) throw new NotFoundError("route");
  const row = await db.maybeOne(sql.type(routeRow)`SELECT ${COLUMNS} FROM routes WHERE id = ${id}`);
  if (!row) throw new NotFoundError("route");
  return row;
}

/** A script's routes, oldest first. */
export async function listRoutes(db: Db, scriptId: string, page: PageRequest): Promise<Page<Route>> {
  const [at, id] = decodeKey(page.cursor, "string", "uuid") ?? [null, null];
  const rows = await db.any(sql.type(routeRow.extend({ cursor_key: z.string() }))`
    SELECT ${COLUMNS}, ${preciseTimestamp("created_at")} AS cursor_key FROM routes
    WHERE script_id = ${scriptId} AND (${at}::timestamptz IS NULL OR (created_at, id) > (${at}::timestamptz, ${id}::uuid))
    ORDER BY created_at, id LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}

/** An app's routes (every script's), oldest first: the dashboard's app page, in one query. */
export async function listAppRoutes(db: Pick<Db, "any">, appId: string, page: PageRequest): Promise<Page<Route>> {
  const [at, id] = decodeKey(page.cursor, "string", "uuid") ?? [null, null];
  const rows = await db.any(sql.type(routeRow.extend({ cursor_key: z.string() }))`
    SELECT ${COLUMNS}, ${preciseTimestamp("created_at")} AS cursor_key FROM routes
    WHERE app_id = ${appId} AND (${at}::timestamptz IS NULL OR (created_at, id) > (${at}::timestamptz, ${id}::uuid))
    ORDER BY created_at, id LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}

export async function deleteRoute(db: Db, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(sql.unsafe`DELETE FROM routes WHERE id = ${id}`);
    await notifyRoutesChanged(tx);
  });
}

/** Gateways reload their route table when this fires (in the changing transaction). */
export const ROUTES_CHANNEL = "picloud_routes";
export async function notifyRoutesChanged(tx: Pick<Db, "query">): Promise<void> {
  await tx.query(sql.unsafe`SELECT pg_notify(${ROUTES_CHANNEL}, '')`);
}

/**
 * What the gateway needs to run a matched route without another query: the route, its app's
 * slug, and the script (id, name, source, version, limits).
 */
export const routeTarget = routeRow.extend({
  app_slug: z.string(),
  script_name: z.string(),
  source: z.string(),
  version: z.number(),
  timeout_ms: z.number(),
  memory_mb: z.number(),
});
export type RouteTarget = z.infer<typeof routeTarget>;

export async function loadRouteTable(db: Db): Promise<RouteTable<RouteTarget>> {
  const rows = await db.any(sql.type(routeTarget)`
    SELECT r.id, r.app_id, r.script_id, r.host_kind, r.host, r.path_kind, r.path, r.methods, r.dispatch_mode, r.created_at,
           a.slug AS app_slug, s.name AS script_name, s.source, s.version, s.timeout_ms, s.memory_mb
    FROM routes r JOIN scripts s ON s.id = r.script_id JOIN apps a ON a.id = r.app_id`);
  return compileRouteTable(rows);
}
