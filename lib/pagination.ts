import { ValidationError } from "./errors.ts";

// Lists are {items, cursor}: the cursor is opaque to clients (base64url of the last row's
// sort key) and null at the end.
export type Page<T> = { items: T[]; cursor: string | null };

export function parseLimit(raw: string | undefined, def = 50, max = 200): number {
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ValidationError("limit", `must be an integer from 1 to ${max}`);
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

/** Takes limit+1 rows; the extra one says there is a next page. */
export function pageOf<R, T>(rows: readonly R[], limit: number, map: (r: R) => T, key: (r: R) => unknown[]): Page<T> {
  const items = rows.slice(0, limit);
  return { items: items.map(map), cursor: rows.length > limit ? encodeCursor(key(items[items.length - 1]!)) : null };
}
