import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { z } from "zod";
import { fromRoot } from "../layout.ts";
import { sql, type Db } from "./pool.ts";

export const SQL_DIR = fromRoot("sql");

// Any constant shared by every migrating process; the lock is per database.
const MIGRATION_LOCK_KEY = 0x70_69_63_6c; // "picl"

export type MigrationFile = { name: string; sql: string; checksum: string };

export class MigrationError extends Error {
  constructor(readonly file: string, override readonly cause: unknown) {
    super(`migration ${file} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "MigrationError";
  }
}

export async function readMigrations(dir = SQL_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => /^\d{4}_[\w-]+\.sql$/.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const text = await readFile(path.join(dir, name), "utf8");
      return { name, sql: text, checksum: createHash("sha256").update(text).digest("hex") };
    }),
  );
}

/**
 * Applies pending migrations in order, all in one transaction under an advisory lock, so two
 * processes starting at once cannot race and a failing file leaves the schema untouched.
 * Uses raw `pg`: a migration file holds several statements, which slonik's extended
 * protocol cannot send in one query. Returns the names it applied.
 */
export async function migrate(databaseUrl: string, dir = SQL_DIR): Promise<string[]> {
  const files = await readMigrations(dir);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ name: string; checksum: string }>("SELECT name, checksum FROM schema_migrations");
    const applied = new Map(rows.map((r) => [r.name, r.checksum]));
    const done: string[] = [];
    for (const file of files) {
      const known = applied.get(file.name);
      if (known !== undefined) {
        if (known !== file.checksum) throw new MigrationError(file.name, new Error("the file changed after it was applied; add a new migration instead"));
        continue;
      }
      try {
        await client.query(file.sql);
      } catch (err) {
        throw new MigrationError(file.name, err);
      }
      await client.query("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", [file.name, file.checksum]);
      done.push(file.name);
    }
    await client.query("COMMIT");
    return done;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

/** For /readyz: the migration files on disk not yet recorded as applied. */
export async function pendingMigrations(db: Db, dir = SQL_DIR): Promise<string[]> {
  const files = await readMigrations(dir);
  const exists = await db.oneFirst(sql.type(z.object({ t: z.boolean() }))`SELECT to_regclass('schema_migrations') IS NOT NULL AS t`);
  if (!exists) return files.map((f) => f.name);
  const applied = new Set(await db.anyFirst(sql.type(z.object({ name: z.string() }))`SELECT name FROM schema_migrations`));
  return files.map((f) => f.name).filter((n) => !applied.has(n));
}
