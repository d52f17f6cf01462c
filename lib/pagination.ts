import { sql } from "./db/pool.ts";
import { ValidationError } from "./errors.ts";
import { isUuid } from "./ids.ts";

// Lists are {items, cursor}: the cursor is opaque to clients (base64url of the last row's
// sort key) and null at the end. Every list takes ?limit= (default 50, 1..200) and ?cursor=.
export type Page<T> = { items: T[]; cursor: string | null };
export type PageRequest = { limit: number; cursor?: string | undefined };

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export function parseLimit(raw: string | undefined, def = DEFAULT_LIMIT, max = MAX_LIMIT): number {
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(n) || n < 1 || n > max) throw new ValidationError("limit", `must be an integer from 1 to ${max}`);
  return n;
}

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(raw: string | undefined, check: (key: unknown[]) => boolean): unknown[] | undefined {
  if (raw === undefined || raw === "") return undefined;
  try {
    const key = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(key) && check(key)) return key;
  } catch {
    /* fall through */
  }
  throw new ValidationError("cursor", "is not a cursor returned by this list");
}

/** A cursor whose key is strings of the given kinds ("uuid" checked as one). */
export function decodeKey<K extends ("string" | "uuid")[]>(raw: string | undefined, ...kinds: K): { [I in keyof K]: string } | undefined {
  return decodeCursor(raw, (k) => k.length === kinds.length && k.every((v, i) => typeof v === "string" && (kinds[i] !== "uuid" || isUuid(v)))) as
    | { [I in keyof K]: string }
    | undefined;
}

/**
 * A timestamp column at full (microsecond) precision, for keyset cursors: the API's ISO strings
 * stop at milliseconds, and a cursor truncated to them would skip rows within the same ms.
 */
export const preciseTimestamp = (column: string) =>
  sql.fragment`to_char(${sql.identifier(column.split("."))} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Takes limit+1 rows; the extra one says there is a next page. */
export function pageOf<R, T>(rows: readonly R[], limit: number, map: (r: R) => T, key: (r: R) => unknown[]): Page<T> {
  const items = rows.slice(0, limit);
  return { items: items.map(map), cursor: rows.length > limit ? encodeCursor(key(items[items.length - 1]!)) : null };
}

/** Drops the `cursor_key` column a query selected only to build the next cursor. */
export const withoutCursorKey = <R extends { cursor_key: string }>({ cursor_key: _, ...rest }: R): Omit<R, "cursor_key"> => rest;
