import { createPool, createTypeParserPreset, sql, type DatabasePool } from "slonik";

export { sql };
export type Db = DatabasePool;

const isoTimestamp = (value: string | null) => (value === null ? null : new Date(value).toISOString());

/**
 * A slonik pool for one process. Timestamps come back as ISO-8601 strings (what the API
 * returns), bigint as number; everything else is slonik's preset.
 */
export async function createDb(url: string, opts: { maximumPoolSize?: number; statementTimeoutMs?: number } = {}): Promise<Db> {
  const typeParsers = [
    ...createTypeParserPreset().filter((p) => p.name !== "timestamptz" && p.name !== "timestamp"),
    { name: "timestamptz", parse: isoTimestamp },
    { name: "timestamp", parse: (v: string | null) => (v === null ? null : new Date(`${v}Z`).toISOString()) },
  ];
  return createPool(url, {
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
}
