import { createPool, createTypeParserPreset, sql, type DatabasePool, type QuerySqlToken } from "slonik";
import { createPrepared, type Prepared } from "./prepared.ts";

export { sql };
/** `prepared`: the hot path's named statements (prepared.ts), ended with the pool. */
export type Db = DatabasePool & { readonly prepared?: Prepared };

const isoTimestamp = (value: string | null) => (value === null ? null : new Date(value).toISOString());

/**
 * A slonik pool for one process. Timestamps come back as ISO-8601 strings (what the API
 * returns), bigint as number; everything else is slonik's preset.
 */
export async function createDb(url: string, opts: { maximumPoolSize?: number; statementTimeoutMs?: number; preparedPoolSize?: number } = {}): Promise<Db> {
  const typeParsers = [
    ...createTypeParserPreset().filter((p) => p.name !== "timestamptz" && p.name !== "timestamp"),
    { name: "timestamptz", parse: isoTimestamp },
    { name: "timestamp", parse: (v: string | null) => (v === null ? null : new Date(`${v}Z`).toISOString()) },
  ];
  const pool = await createPool(url, {
    maximumPoolSize: opts.maximumPoolSize ?? 10,
    typeParsers,
    captureStackTrace: false,
    statementTimeout: opts.statementTimeoutMs ?? 60_000,
    idleTimeout: 30_000,
    connectionTimeout: 10_000,
    // slonik runs DISCARD ALL on every release by default: a round trip per query. picloud keeps
    // no session state on pooled connections (locks are transaction-scoped; LISTEN has its own
    // connection), so releasing is free.
    resetConnection: async () => undefined,
    // Queries are retried only where the caller decides (the outbox is exact); no silent retries.
    queryRetryLimit: 0,
    transactionRetryLimit: 0,
  });
  const prepared = createPrepared(url, { max: opts.preparedPoolSize ?? 2, statementTimeoutMs: opts.statementTimeoutMs ?? 60_000 });
  const endPool = pool.end.bind(pool);
  return Object.assign(pool, { prepared, end: async () => void (await Promise.all([endPool(), prepared.end()])) });
}

/**
 * A hot-path statement's rows: as a named prepared statement when `db` is a pool from createDb,
 * through slonik otherwise (inside a transaction). The token's text must not depend on the data.
 */
export function hotRows<T>(db: Pick<DatabasePool, "any"> | Pick<Db, "any" | "prepared">, token: QuerySqlToken): Promise<readonly T[]> {
  const prepared = "prepared" in db ? db.prepared : undefined;
  return prepared ? prepared.rows<T>(token) : (db.any(token) as Promise<readonly T[]>);
}

/**
 * A hot-path statement whose text never depends on its values (batches travel as arrays), run as
 * hotRows runs it, but on the prepared pool without building a slonik token each time: slonik
 * renders the text once, and later calls send `values(args)` with it. Building the token (its
 * nested fragments and arrays) cost about as much of the dispatcher's main thread as sending the
 * statement. `values` must list the values in the text's order: checked against slonik's own the
 * first time. Outside the prepared pool (a transaction), the token is built as usual.
 */
export function fixedStatement<A extends unknown[]>(token: (...args: A) => QuerySqlToken, values: (...args: A) => unknown[]) {
  let text: string | undefined;
  return <T>(db: Pick<DatabasePool, "any"> | Pick<Db, "any" | "prepared">, ...args: A): Promise<readonly T[]> => {
    const prepared = "prepared" in db ? db.prepared : undefined;
    if (!prepared) return db.any(token(...args)) as Promise<readonly T[]>;
    const sent = values(...args);
    if (text === undefined) {
      const t = token(...args);
      if (JSON.stringify(t.values) !== JSON.stringify(sent)) throw new Error("fixedStatement: `values` does not list the statement's values in its text's order");
      text = t.sql;
    }
    return prepared.rows<T>({ sql: text, values: sent });
  };
}
