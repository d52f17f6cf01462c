import { UniqueIntegrityConstraintViolationError } from "slonik";
import { z } from "zod";
import { may, type Role } from "../auth/roles.ts";
import type { Principal } from "../auth/tokens.ts";
import { sql, type Db } from "../db/pool.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import { notifyRoutesChanged } from "../routes/index.ts";
import { decodeKey, pageOf, type Page, type PageRequest } from "../pagination.ts";

export const appRow = z.object({ id: z.string(), slug: z.string(), name: z.string(), created_at: z.string(), updated_at: z.string() });
export type App = z.infer<typeof appRow>;
/** An app as one caller sees it: with their role (owner → "owner"). */
export type AppAccess = App & { role: Role | "owner" };

const accessRow = appRow.extend({ role: z.string().nullable() });

/**
 * The one access check for everything that belongs to an app. An app the caller is not a
 * member of is "not found" (no existence leak); a role below `need` is forbidden.
 */
export async function appAccess(db: Pick<Db, "maybeOne">, who: Principal, where: { ref: string } | { id: string }, need: Role, what = "app"): Promise<AppAccess> {
  const cond = "id" in where ? sql.fragment`a.id = ${where.id}` : isUuid(where.ref) ? sql.fragment`a.id = ${where.ref}` : sql.fragment`a.slug = ${where.ref}`;
  const row = await db.maybeOne(sql.type(accessRow)`
    SELECT a.id, a.slug, a.name, a.created_at, a.updated_at, m.role
    FROM apps a LEFT JOIN app_members m ON m.app_id = a.id AND m.user_id = ${who.userId}
    WHERE ${cond}`);
  if (!row || (!who.isOwner && row.role === null)) throw new NotFoundError(what);
  const role = who.isOwner ? "owner" : (row.role as Role);
  if (!may(role, need)) throw new ForbiddenError(`this needs the ${need} role on app ${row.slug}; you are ${role}`);
  return { ...row, role };
}

/**
 * Any signed-in user (with the write scope) may create an app: apps are how people get room to
 * work, and the owner keeps instance-wide rights over all of them. The creator becomes the
 * app's first app_admin.
 */
export async function createApp(db: Db, who: Principal, input: { slug: string; name: string }): Promise<AppAccess> {
  return db.transaction(async (tx) => {
    const app = await tx.maybeOne(sql.type(appRow)`
      INSERT INTO apps (slug, name, created_by) VALUES (${input.slug}, ${input.name}, ${who.userId})
      ON CONFLICT (slug) DO NOTHING
      RETURNING id, slug, name, created_at, updated_at`);
    if (!app) throw new ConflictError(`an app with slug ${input.slug} exists`);
    await tx.query(sql.unsafe`INSERT INTO app_members (app_id, user_id, role) VALUES (${app.id}, ${who.userId}, 'app_admin')`);
    return { ...app, role: who.isOwner ? "owner" : "app_admin" };
  });
}

/** The apps the caller belongs to (the owner: all), ordered by slug. */
export async function listApps(db: Db, who: Principal, page: PageRequest): Promise<Page<AppAccess>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(accessRow)`
    SELECT a.id, a.slug, a.name, a.created_at, a.updated_at, m.role
    FROM apps a LEFT JOIN app_members m ON m.app_id = a.id AND m.user_id = ${who.userId}
    WHERE (${who.isOwner} OR m.role IS NOT NULL) AND (${after}::text IS NULL OR a.slug > ${after})
    ORDER BY a.slug LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => ({ ...r, role: who.isOwner ? "owner" : (r.role as Role) }), (r) => [r.slug]);
}

export async function updateApp(db: Db, id: string, input: { name?: string | undefined; slug?: string | undefined }): Promise<App> {
  try {
    const row = await db.maybeOne(sql.type(appRow)`
      UPDATE apps SET name = coalesce(${input.name ?? null}, name), slug = coalesce(${input.slug ?? null}, slug), updated_at = now()
      WHERE id = ${id}
      RETURNING id, slug, name, created_at, updated_at`);
    if (!row) throw new NotFoundError("app");
    return row;
  } catch (err) {
    if (err instanceof UniqueIntegrityConstraintViolationError) throw new ConflictError(`an app with slug ${input.slug} exists`);
    throw err;
  }
}

export async function deleteApp(db: Db, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(sql.unsafe`DELETE FROM apps WHERE id = ${id}`);
    await notifyRoutesChanged(tx);
  });
}

const memberRow = z.object({ user_id: z.string(), email: z.string(), role: z.string(), created_at: z.string() });
export type Member = z.infer<typeof memberRow>;

export async function setMember(db: Db, appId: string, userId: string, role: Role): Promise<Member> {
  if (!isUuid(userId)) throw new NotFoundError("user");
  const row = await db.maybeOne(sql.type(memberRow)`
    WITH m AS (
      INSERT INTO app_members (app_id, user_id, role)
      SELECT ${appId}, id, ${role} FROM users WHERE id = ${userId}
      ON CONFLICT (app_id, user_id) DO UPDATE SET role = excluded.role
      RETURNING user_id, role, created_at)
    SELECT m.user_id, u.email, m.role, m.created_at FROM m JOIN users u ON u.id = m.user_id`);
  if (!row) throw new NotFoundError("user");
  return row;
}

/** An app's members, ordered by email. */
export async function listMembers(db: Db, appId: string, page: PageRequest): Promise<Page<Member>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(memberRow)`
    SELECT m.user_id, u.email, m.role, m.created_at FROM app_members m JOIN users u ON u.id = m.user_id
    WHERE m.app_id = ${appId} AND (${after}::text IS NULL OR u.email > ${after})
    ORDER BY u.email LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => r, (r) => [r.email]);
}

export async function removeMember(db: Db, appId: string, userId: string): Promise<void> {
  if (!isUuid(userId)) throw new NotFoundError("member");
  const r = await db.query(sql.unsafe`DELETE FROM app_members WHERE app_id = ${appId} AND user_id = ${userId}`);
  if (r.rowCount === 0) throw new NotFoundError("member");
}
