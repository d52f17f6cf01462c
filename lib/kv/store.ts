// Reads of the key-value store. Every query is scoped by the app id its caller was given (an
// execution's context, or the admin access check), never by anything in a name, key or cursor;
// names and keys only ever travel as bound parameters. Expired keys are filtered in every read.
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { decodeKey, pageOf, type Page, type PageRequest } from "../pagination.ts";

type Reader = Pick<Db, "any" | "maybeOne">;

const LIVE = sql.fragment`(expires_at IS NULL OR expires_at > now())`;

/** The JSON text of a live key's value, or null when it is absent or expired. */
export async function readValue(db: Reader, appId: string, collection: string, key: string): Promise<string | null> {
  const row = await db.maybeOne(sql.type(z.object({ json: z.string() }))`
    SELECT value::text AS json FROM kv_entries
    WHERE app_id = ${appId} AND collection = ${collection} AND key = ${key} AND ${LIVE}`);
  return row?.json ?? null;
}

/** Live keys after `after` (exclusive) starting with `prefix`, in key order, as JSON text. */
export async function readRange(db: Reader, appId: string, collection: string, opts: { after: string | null; prefix: string; limit: number }): Promise<readonly { key: string; json: string }[]> {
  return db.any(sql.type(z.object({ key: z.string(), json: z.string() }))`
    SELECT key, value::text AS json FROM kv_entries
    WHERE app_id = ${appId} AND collection = ${collection} AND ${LIVE}
      AND (${opts.after}::text IS NULL OR key > ${opts.after}::text)
      AND (${opts.prefix} = '' OR starts_with(key, ${opts.prefix}))
    ORDER BY key
    LIMIT ${opts.limit}`);
}

// ---- admin browsing ----

const collectionRow = z.object({ name: z.string(), keys: z.number() });
export type CollectionInfo = z.infer<typeof collectionRow>;

/** An app's collections with their live key counts, by name. */
export async function listCollections(db: Reader, appId: string, page: PageRequest): Promise<Page<CollectionInfo>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(collectionRow)`
    SELECT collection AS name, count(*)::int AS keys FROM kv_entries
    WHERE app_id = ${appId} AND ${LIVE} AND (${after}::text IS NULL OR collection > ${after}::text)
    GROUP BY collection ORDER BY collection
    LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => r, (r) => [r.name]);
}

const entryInfo = z.object({ key: z.string(), bytes: z.number(), expires_at: z.string().nullable(), created_at: z.string(), updated_at: z.string() });
export type EntryInfo = z.infer<typeof entryInfo>;
export type Entry = EntryInfo & { collection: string; value: unknown };

/** A collection's live keys (without values: a page could be large), by key. */
export async function listKeys(db: Reader, appId: string, collection: string, page: PageRequest & { prefix: string }): Promise<Page<EntryInfo>> {
  const after = decodeKey(page.cursor, "string")?.[0] ?? null;
  const rows = await db.any(sql.type(entryInfo)`
    SELECT key, octet_length(value::text) AS bytes, expires_at, created_at, updated_at FROM kv_entries
    WHERE app_id = ${appId} AND collection = ${collection} AND ${LIVE}
      AND (${after}::text IS NULL OR key > ${after}::text)
      AND (${page.prefix} = '' OR starts_with(key, ${page.prefix}))
    ORDER BY key
    LIMIT ${page.limit + 1}`);
  return pageOf(rows, page.limit, (r) => r, (r) => [r.key]);
}

export async function getEntry(db: Reader, appId: string, collection: string, key: string): Promise<Entry | null> {
  const row = await db.maybeOne(sql.type(entryInfo.extend({ json: z.string() }))`
    SELECT key, octet_length(value::text) AS bytes, expires_at, created_at, updated_at, value::text AS json FROM kv_entries
    WHERE app_id = ${appId} AND collection = ${collection} AND key = ${key} AND ${LIVE}`);
  if (!row) return null;
  const { json, ...info } = row;
  return { collection, ...info, value: JSON.parse(json) as unknown };
}

/** Deletes keys whose TTL ran out (the sweeper), a bounded batch per call. A key set again meanwhile stays. */
export async function deleteExpired(db: Pick<Db, "query">, limit = 10_000): Promise<number> {
  const r = await db.query(sql.unsafe`
    DELETE FROM kv_entries k
    USING (SELECT app_id, collection, key FROM kv_entries WHERE expires_at <= now() LIMIT ${limit}) e
    WHERE k.app_id = e.app_id AND k.collection = e.collection AND k.key = e.key AND k.expires_at <= now()`);
  return r.rowCount;
}
