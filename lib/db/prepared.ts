// Named prepared statements for the execution spine's hot path (claim, complete, enqueue).
//
// DESIGN.md says slonik for SQL and raw pg only where slonik cannot serve; this is such a place:
// slonik sends every query as an unnamed statement, so Postgres parses and plans it each time,
// and the claim and complete statements (CTEs with joins, json and unnest) cost far more to
// plan than to run: an empty claim took 3.2 ms planned each time against 0.27 ms prepared
// (pgbench -M simple vs -M prepared, same statement; EXPLAIN SUMMARY: planning 3–9 ms, execution
// ~1 ms). See docs/performance.md for the effect on the spine.
//
// The SQL stays where it is (lib/outbox, one file per operation, written with slonik's `sql`
// tags): this runs a finished slonik token's text and values as a named statement on a small raw
// pg pool. A statement's text must not depend on the data (batch sizes travel as arrays), so one
// prepared form per connection serves every call. The connections plan generically at once (no
// five custom plans first): these statements have no value-dependent plan worth it.
import { createHash } from "node:crypto";
import pg from "pg";

type Token = { readonly sql: string; readonly values: readonly unknown[] };
export type Prepared = {
  /** Runs `token` as a named prepared statement; rows as pg returns them (types as below). */
  rows<T>(token: Token): Promise<T[]>;
  end(): Promise<void>;
};

const TIMESTAMPTZ = 1184;
const TIMESTAMP = 1114;
const INT8 = 20;
// The same value forms as lib/db/pool.ts gives through slonik: ISO-8601 timestamps, bigint as number.
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === TIMESTAMPTZ) return (v: string) => new Date(v).toISOString();
    if (oid === TIMESTAMP) return (v: string) => new Date(`${v}Z`).toISOString();
    if (oid === INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Statement names by text (a name must always mean the same text on a connection). */
const names = new Map<string, { name: string; text: string }>();
function prepare(slonikSql: string): { name: string; text: string } {
  let p = names.get(slonikSql);
  if (!p) {
    p = { name: `picloud_${createHash("sha1").update(slonikSql).digest("hex").slice(0, 16)}`, text: slonikSql.replace(/\$slonik_(\d+)/g, "$$$1") };
    names.set(slonikSql, p);
  }
  return p;
}

export function createPrepared(url: string, opts: { max?: number; statementTimeoutMs?: number } = {}): Prepared {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 4,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    types,
    options: `-c plan_cache_mode=force_generic_plan -c statement_timeout=${opts.statementTimeoutMs ?? 60_000}`,
  });
  // An idle connection that drops (Postgres restarts) must not crash the process; the next
  // query opens a new one.
  pool.on("error", () => undefined);
  return {
    async rows<T>(token: Token): Promise<T[]> {
      const { name, text } = prepare(token.sql);
      const r = await pool.query({ name, text, values: token.values as unknown[] });
      return r.rows as T[];
    },
    end: () => pool.end(),
  };
}
