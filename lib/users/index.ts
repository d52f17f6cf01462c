import type { DatabaseTransactionConnection } from "slonik";
import { z } from "zod";
import { hashPassword, verifyPassword } from "../auth/passwords.ts";
import { issueToken, pruneExpiredTokens, type TokenInfo } from "../auth/tokens.ts";
import { sql, type Db } from "../db/pool.ts";
import { ConflictError, UnauthenticatedError } from "../errors.ts";
import { decodeKey, pageOf, type Page, type PageRequest } from "../pagination.ts";

export const userRow = z.object({ id: z.string(), email: z.string(), is_owner: z.boolean(), created_at: z.string() });
export type User = z.infer<typeof userRow>;

const BOOTSTRAP_LOCK = 0x70_62_6f_6f; // "pboo"

/**
 * Creates the instance owner, only while no user exists, and runs `then` (issuing the first
 * token) in the same transaction, so a failure leaves no owner behind. Race-safe: concurrent
 * bootstraps queue on a transaction lock and all but the first see a user and get 409 (the
 * single-owner index backs this up).
 */
export async function bootstrapOwner<T>(db: Db, email: string, password: string, then: (tx: DatabaseTransactionConnection, user: User) => Promise<T>): Promise<{ user: User; token: T }> {
  const hash = await hashPassword(password);
  return db.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`);
    if (await tx.exists(sql.unsafe`SELECT 1 FROM users`)) throw new ConflictError("already bootstrapped: sign in instead");
    const user = await tx.one(sql.type(userRow)`
      INSERT INTO users (email, password_hash, is_owner) VALUES (${email}, ${hash}, true)
      RETURNING id, email, is_owner, created_at`);
    return { user, token: await then(tx, user) };
  });
}

export async function createUser(db: Db, email: string, password: string): Promise<User> {
  const hash = await hashPassword(password);
  const row = await db.maybeOne(sql.type(userRow)`
    INSERT INTO users (email, password_hash) VALUES (${email}, ${hash})
    ON CONFLICT (email) DO NOTHING
    RETURNING id, email, is_owner, created_at`);
  if (!row) throw new ConflictError(`a user with email ${email} exists`);
  return row;
}

/** Users ordered by email (unique), a page at a time. */
export async function listUsers(db: Db, page: PageRequest): Promise<Page<User>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(userRow)`
    SELECT id, email, is_owner, created_at FROM users
    WHERE ${after}::text IS NULL OR email > ${after}
    ORDER BY email LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => r, (r) => [r.email]);
}

/** The same answer and the same cost for an unknown email and a wrong password. */
export async function checkLogin(db: Db, email: string, password: string): Promise<User> {
  const row = await db.maybeOne(sql.type(userRow.extend({ password_hash: z.string() }))`
    SELECT id, email, is_owner, created_at, password_hash FROM users WHERE email = ${email}`);
  const ok = await verifyPassword(password, row?.password_hash);
  if (!row || !ok) throw new UnauthenticatedError("wrong email or password");
  const { password_hash: _, ...user } = row;
  return user;
}

/** How long a sign-in's token lasts (the API's login and bootstrap, and the dashboard's session). */
export const SESSION_DAYS = 30;

/**
 * Signs a user in: checks the password, then issues a full-scope (`admin`) token named `name`
 * ("session" for the API's login, "dashboard" for the dashboard's cookie).
 */
export async function signIn(db: Db, email: string, password: string, name: string): Promise<{ user: User; token: TokenInfo & { token: string } }> {
  const user = await checkLogin(db, email, password);
  await pruneExpiredTokens(db, user.id);
  return { user, token: await issueToken(db, user.id, name, ["admin"], SESSION_DAYS) };
}

export async function userExists(db: Pick<Db, "exists">, id: string): Promise<boolean> {
  return db.exists(sql.unsafe`SELECT 1 FROM users WHERE id = ${id}`);
}
