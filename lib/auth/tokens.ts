import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { NotFoundError, UnauthenticatedError } from "../errors.ts";
import { isUuid } from "../ids.ts";
import { decodeKey, pageOf, preciseTimestamp, withoutCursorKey, type Page, type PageRequest } from "../pagination.ts";

/** Who is calling: resolved from a bearer token on every admin request. */
export type Principal = { userId: string; email: string; isOwner: boolean; scopes: string[]; tokenId: string };

const hashOf = (secret: string) => createHash("sha256").update(secret).digest();

const tokenRow = z.object({ id: z.string(), name: z.string(), scopes: z.array(z.string()), created_at: z.string(), last_used_at: z.string().nullable(), expires_at: z.string().nullable() });
export type TokenInfo = z.infer<typeof tokenRow>;

/** Issues a token; the secret is returned once and only its hash is stored. */
export async function issueToken(db: Pick<Db, "one">, userId: string, name: string, scopes: string[], expiresInDays: number | null): Promise<TokenInfo & { token: string }> {
  const secret = `pc_${randomBytes(32).toString("base64url")}`;
  const row = await db.one(sql.type(tokenRow)`
    INSERT INTO api_tokens (user_id, name, token_hash, scopes, expires_at)
    VALUES (${userId}, ${name}, ${sql.binary(hashOf(secret))}, ${sql.array(scopes, "text")},
            CASE WHEN ${expiresInDays}::int IS NULL THEN NULL ELSE now() + make_interval(days => ${expiresInDays}::int) END)
    RETURNING id, name, scopes, created_at, last_used_at, expires_at`);
  return { ...row, token: secret };
}

const principalRow = z.object({ token_id: z.string(), user_id: z.string(), email: z.string(), is_owner: z.boolean(), scopes: z.array(z.string()), stale: z.boolean() });

export async function authenticate(db: Db, header: string | undefined): Promise<Principal> {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (!m) throw new UnauthenticatedError("missing bearer token (Authorization: Bearer <token>)");
  return authenticateSecret(db, m[1]!);
}

/** The principal of a token secret (a bearer token, or the dashboard's session cookie). */
export async function authenticateSecret(db: Db, secret: string): Promise<Principal> {
  const row = await db.maybeOne(sql.type(principalRow)`
    SELECT t.id AS token_id, u.id AS user_id, u.email, u.is_owner, t.scopes,
           (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute') AS stale
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = ${sql.binary(hashOf(secret))} AND (t.expires_at IS NULL OR t.expires_at > now())`);
  if (!row) throw new UnauthenticatedError("invalid or expired token");
  // last_used_at is kept to the minute, so a busy token does not write on every request.
  if (row.stale) {
    await db.query(sql.unsafe`
      UPDATE api_tokens SET last_used_at = now()
      WHERE id = ${row.token_id} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`);
  }
  return { userId: row.user_id, email: row.email, isOwner: row.is_owner, scopes: row.scopes, tokenId: row.token_id };
}

/** The user's own tokens, newest first (never the secret). */
export async function listTokens(db: Db, userId: string, page: PageRequest): Promise<Page<TokenInfo>> {
  const [at, id] = decodeKey(page.cursor, "string", "uuid") ?? [null, null];
  const rows = await db.any(sql.type(tokenRow.extend({ cursor_key: z.string() }))`
    SELECT id, name, scopes, created_at, last_used_at, expires_at, ${preciseTimestamp("created_at")} AS cursor_key
    FROM api_tokens
    WHERE user_id = ${userId} AND (${at}::timestamptz IS NULL OR (created_at, id) < (${at}::timestamptz, ${id}::uuid))
    ORDER BY created_at DESC, id DESC LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, withoutCursorKey, (r) => [r.cursor_key, r.id]);
}

/** Drops the user's tokens that expired over a day ago (run at login, so the table stays small). */
export async function pruneExpiredTokens(db: Pick<Db, "query">, userId: string): Promise<void> {
  await db.query(sql.unsafe`DELETE FROM api_tokens WHERE user_id = ${userId} AND expires_at < now() - interval '1 day'`);
}

/** Revokes one of the user's own tokens; anyone else's is "not found". */
export async function deleteToken(db: Db, userId: string, id: string): Promise<void> {
  if (!isUuid(id)) throw new NotFoundError("token");
  const r = await db.query(sql.unsafe`DELETE FROM api_tokens WHERE id = ${id} AND user_id = ${userId}`);
  if (r.rowCount === 0) throw new NotFoundError("token");
}
