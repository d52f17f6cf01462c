import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import test from "ava";
import pg from "pg";
import { MigrationError, migrate, readMigrations } from "../lib/db/migrate.ts";
import { emptyDatabase } from "./helpers/db.ts";

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

test("applies every sql/ file once, in order, and is idempotent", async (t) => {
  const { url } = await emptyDatabase();
  const files = (await readMigrations()).map((f) => f.name);
  t.deepEqual(await migrate(url), files);
  t.deepEqual(await migrate(url), []);
  const rows = await query<{ name: string }>(url, "SELECT name FROM schema_migrations ORDER BY name");
  t.deepEqual(rows.map((r) => r.name), files);
  const tables = await query<{ t: string }>(url, "SELECT to_regclass('users')::text AS t");
  t.is(tables[0]!.t, "users");
});

test("two runners at once do not race: each file applied exactly once", async (t) => {
  const { url } = await emptyDatabase();
  const results = await Promise.all([migrate(url), migrate(url), migrate(url)]);
  const files = (await readMigrations()).map((f) => f.name);
  t.deepEqual(results.flat().sort(), files);
});

test("a failing migration leaves the schema untouched and names the file", async (t) => {
  const { url } = await emptyDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), "picloud-mig-"));
  await writeFile(path.join(dir, "0001_ok.sql"), "CREATE TABLE first_table (id int);");
  await writeFile(path.join(dir, "0002_bad.sql"), "CREATE TABLE second_table (id int);\nSELECT * FROM no_such_table;");
  const err = await t.throwsAsync(migrate(url, dir), { instanceOf: MigrationError });
  t.is((err as MigrationError).file, "0002_bad.sql");
  t.regex(err!.message, /0002_bad\.sql.*no_such_table/);
  const rows = await query<{ a: string | null; b: string | null; m: string | null }>(
    url,
    "SELECT to_regclass('first_table')::text AS a, to_regclass('second_table')::text AS b, to_regclass('schema_migrations')::text AS m",
  );
  t.deepEqual(rows[0], { a: null, b: null, m: null });
});

test("a file changed after it was applied stops start-up", async (t) => {
  const { url } = await emptyDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), "picloud-mig-"));
  await writeFile(path.join(dir, "0001_ok.sql"), "CREATE TABLE t1 (id int);");
  await migrate(url, dir);
  await writeFile(path.join(dir, "0001_ok.sql"), "CREATE TABLE t1 (id bigint);");
  const err = await t.throwsAsync(migrate(url, dir), { instanceOf: MigrationError });
  t.regex(err!.message, /0001_ok\.sql.*changed/);
});
