// What the store accepts. Each check returns a problem (a sentence naming what was wrong) or
// null; the SDK turns a problem into the script's error, the admin API into a 400 naming the
// field. Everything a write could fail on at commit time is refused here, at call time: a write
// that passed these checks always applies.

/** A value's JSON text, in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 256 * 1024;
export const MAX_KEY_BYTES = 1024;
export const MAX_COLLECTION_BYTES = 256;
/** Nesting depth of a value (Postgres parses JSON recursively). */
export const MAX_VALUE_DEPTH = 256;
export const MAX_TTL_SECS = 10 * 365 * 24 * 3600;
export const LIST_DEFAULT_LIMIT = 100;
export const LIST_MAX_LIMIT = 1000;
/** Per execution: its buffered writes (they commit with it). */
export const MAX_WRITES_PER_EXECUTION = 10_000;
export const MAX_WRITE_BYTES_PER_EXECUTION = 16 * 1024 * 1024;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : v === "" ? "an empty string" : typeof v);

/** Text Postgres can store as is: no NUL, no unpaired surrogate (it would be silently replaced). */
function textProblem(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain the NUL character (U+0000)";
  if (LONE_SURROGATE.test(s)) return "must be well-formed Unicode (it has an unpaired surrogate)";
  return null;
}

function nameProblem(v: unknown, maxBytes: number): string | null {
  if (typeof v !== "string" || v === "") return `must be a non-empty string, got ${describe(v)}`;
  const bad = textProblem(v);
  if (bad) return bad;
  const bytes = Buffer.byteLength(v);
  return bytes > maxBytes ? `must be at most ${maxBytes} bytes of UTF-8, got ${bytes}` : null;
}

export const collectionProblem = (v: unknown) => nameProblem(v, MAX_COLLECTION_BYTES);
export const keyProblem = (v: unknown) => nameProblem(v, MAX_KEY_BYTES);

/** A prefix may be empty (everything). */
export function prefixProblem(v: unknown): string | null {
  if (typeof v !== "string") return `must be a string, got ${describe(v)}`;
  return v === "" ? null : (textProblem(v) ?? (Buffer.byteLength(v) > MAX_KEY_BYTES ? `must be at most ${MAX_KEY_BYTES} bytes of UTF-8` : null));
}

/**
 * A value given as its JSON text (the SDK serializes in the sandbox, so the size is exactly what
 * is stored). Returns the parsed value, or the problem.
 */
export function checkValueJson(json: unknown): { ok: true; value: unknown; bytes: number } | { ok: false; problem: string } {
  if (typeof json !== "string") return { ok: false, problem: "must be JSON text" };
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_VALUE_BYTES) return { ok: false, problem: `is ${bytes} bytes of JSON, over the limit of ${MAX_VALUE_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, problem: "is not valid JSON" };
  }
  const bad = valueProblem(value, 0);
  return bad ? { ok: false, problem: bad } : { ok: true, value, bytes };
}

function valueProblem(v: unknown, depth: number): string | null {
  if (depth > MAX_VALUE_DEPTH) return `nests deeper than ${MAX_VALUE_DEPTH} levels`;
  if (typeof v === "string") {
    const bad = textProblem(v);
    return bad ? `has a string that ${bad}` : null;
  }
  if (Array.isArray(v)) {
    for (const x of v) {
      const bad = valueProblem(x, depth + 1);
      if (bad) return bad;
    }
    return null;
  }
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      const badKey = textProblem(k);
      if (badKey) return `has an object key that ${badKey}`;
      const bad = valueProblem(x, depth + 1);
      if (bad) return bad;
    }
  }
  return null;
}

export function ttlProblem(v: unknown): string | null {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_TTL_SECS) return `must be an integer number of seconds from 1 to ${MAX_TTL_SECS}, got ${typeof v === "number" ? v : describe(v)}`;
  return null;
}

export function limitProblem(v: unknown): string | null {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > LIST_MAX_LIMIT) return `must be an integer from 1 to ${LIST_MAX_LIMIT}, got ${typeof v === "number" ? v : describe(v)}`;
  return null;
}

/**
 * Order of keys as Postgres's "C" collation sorts them: UTF-8 bytes, i.e. code points (JS string
 * comparison is UTF-16 code units, which differs above U+FFFF).
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
