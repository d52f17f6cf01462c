// Test databases: every test file gets a fresh database cloned from a migrated template, so
// files run in parallel without seeing each other's data. The server is the one test/run.ts
// chose (PICLOUD_TEST_BASE_URL): DATABASE_URL, the machine's Postgres, or an embedded one.
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { migrate, readMigrations } from "../../lib/db/migrate.ts";

export function baseUrl(): string {
  const url = process.env.PICLOUD_TEST_BASE_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error("PICLOUD_TEST_BASE_URL is not set: run the tests with `npm test`");
  return url;
}

export function urlFor(database: string, base = baseUrl()): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const TEMPLATE_LOCK = 0x70_69_74_70; // "pitp"

/** The migrated template for the current sql/ files (named by their hash, built once). */
async function templateName(): Promise<string> {
  const files = await readMigrations();
  const hash = createHash("sha256").update(files.map((f) => `${f.name}:${f.checksum}`).join("\n")).digest("hex").slice(0, 12);
  const name = `picloud_tpl_${hash}`;
  await withClient(baseUrl(), async (c) => {
    await c.query("SELECT pg_advisory_lock($1)", [TEMPLATE_LOCK]);
    try {
      const { rows } = await c.query<{ datistemplate: boolean }>("SELECT datistemplate FROM pg_database WHERE datname = $1", [name]);
      if (rows[0]?.datistemplate) return;
      // A template left half-built by a killed run is rebuilt.
      if (rows[0]) await c.query(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      await migrate(urlFor(name));
      await c.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    } finally {
      await c.query("SELECT pg_advisory_unlock($1)", [TEMPLATE_LOCK]);
    }
  });
  return name;
}

// picloud_t_<epoch>_<run>_<random>: the runner drops its own run's, and stale ones of killed runs.
const newName = () => `picloud_t_${Math.floor(Date.now() / 1000)}_${process.env.PICLOUD_TEST_RUN ?? "adhoc"}_${randomBytes(4).toString("hex")}`;

/**
 * A fresh, migrated database for one test file.
 */
export async function freshDatabase(): Promise<{ url: string; name: string }> {
  const template = await templateName();
  const name = newName();
  await withClient(baseUrl(), async (c) => {
    // CREATE DATABASE ... TEMPLATE fails while another session is copying the same template.
    for (let attempt = 0; ; attempt++) {
      try {
        await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`);
        return;
      } catch (err) {
        if (attempt > 50 || !/being accessed by other users/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  });
  return { url: urlFor(name), name };
}

/** An empty database (no migrations), for the migration tests. */
export async function emptyDatabase(): Promise<{ url: string; name: string }> {
  const name = newName();
  await withClient(baseUrl(), (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  return { url: urlFor(name), name };
}

/** Drops the test databases of one run, or (run undefined) those made before `olderThanEpoch`. */
export async function dropTestDatabases(filter: { run?: string; olderThanEpoch?: number }, base = baseUrl()): Promise<number> {
  return withClient(base, async (c) => {
    const { rows } = await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'picloud\\_t\\_%'");
    let dropped = 0;
    for (const { datname } of rows) {
      const [, , epoch, run] = datname.split("_");
      const match = filter.run !== undefined ? run === filter.run : Number(epoch) < (filter.olderThanEpoch ?? 0);
      if (match) {
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(datname)} WITH (FORCE)`);
        dropped++;
      }
    }
    return dropped;
  });
}
