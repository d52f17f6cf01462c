// The script SDK's `kv` global (SPEC section 5), as an executor HostModule:
//   kv.collection(name) → { get(key), set(key, value, { ttl_secs }?), has(key), delete(key), list({ cursor, limit, prefix }) }
// The sandbox side only shapes calls (and serializes values, so the size checked is the size
// stored); every check that matters is repeated here on the host, which takes the app from the
// execution's context and nothing else.
import { SdkError, type HostModule } from "../executor/types.ts";
import { checkValueJson, collectionProblem, keyProblem, LIST_DEFAULT_LIMIT, limitProblem, prefixProblem, ttlProblem } from "./limits.ts";
import { asKvCall, sessionFor, type KvContext, type KvSession } from "./session.ts";

const PRELUDE = String.raw`(() => {
  const host = globalThis.__host, stringify = JSON.stringify, isArray = Array.isArray, freeze = Object.freeze;
  const kind = (v) => (v === null ? "null" : isArray(v) ? "an array" : v === "" ? "an empty string" : typeof v);
  const name = (where, what, v) => {
    if (typeof v !== "string" || v === "") throw new TypeError(where + ": " + what + " must be a non-empty string, got " + kind(v));
  };
  const options = (where, o) => {
    if (o === undefined || o === null) return null;
    if (typeof o !== "object" || isArray(o)) throw new TypeError(where + ": options must be an object, got " + kind(o));
    return o;
  };
  const collection = (c) => {
    name("kv.collection", "the collection name", c);
    const call = (op, args) => host("kv." + op, [c].concat(args));
    return freeze({
      name: c,
      get: async (key) => (name("kv.get", "key", key), call("get", [key])),
      has: async (key) => (name("kv.has", "key", key), call("has", [key])),
      set: async (key, value, opts) => {
        name("kv.set", "key", key);
        let json;
        try { json = stringify(value); } catch (e) { throw new TypeError("kv.set: the value is not JSON-serializable (" + (e && e.message) + ")"); }
        if (json === undefined) throw new TypeError("kv.set: the value is not JSON-serializable (" + typeof value + ")");
        await call("set", [key, json, options("kv.set", opts)]);
      },
      delete: async (key) => (name("kv.delete", "key", key), call("delete", [key])),
      list: async (opts) => call("list", [options("kv.list", opts)]),
    });
  };
  globalThis.kv = freeze({ collection });
})()`;

const fail = (where: string, what: string, problem: string) => new SdkError(`${where}: ${what} ${problem}`);

function checked<T>(where: string, what: string, v: unknown, problem: (v: unknown) => string | null): T {
  const bad = problem(v);
  if (bad) throw fail(where, what, bad);
  return v as T;
}

/** Options objects: only the known keys (a misspelt ttl_secs must not be silently ignored). */
function optionsOf(where: string, raw: unknown, known: string[]): Record<string, unknown> {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== "object" || Array.isArray(raw)) throw new SdkError(`${where}: options must be an object`);
  for (const k of Object.keys(raw)) if (!known.includes(k)) throw new SdkError(`${where}: unknown option ${JSON.stringify(k)} (known: ${known.join(", ")})`);
  return raw as Record<string, unknown>;
}

// Cursors are opaque to scripts: base64url of [collection, prefix, last key]. They only ever
// position a read inside the caller's own app and collection.
const encodeCursor = (collection: string, prefix: string, key: string) => Buffer.from(JSON.stringify([collection, prefix, key])).toString("base64url");

function decodeCursor(raw: unknown, collection: string, prefix: string): string | null {
  if (raw === undefined || raw === null) return null;
  let parts: unknown;
  try {
    if (typeof raw !== "string" || !/^[A-Za-z0-9_-]+$/.test(raw)) throw new Error();
    parts = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
  } catch {
    throw new SdkError("kv.list: cursor is not one returned by list");
  }
  if (!Array.isArray(parts) || parts.length !== 3 || !parts.every((p) => typeof p === "string") || keyProblem(parts[2]) !== null) {
    throw new SdkError("kv.list: cursor is not one returned by list");
  }
  if (parts[0] !== collection || parts[1] !== prefix) throw new SdkError("kv.list: cursor belongs to a list of another collection or prefix");
  return parts[2] as string;
}

/** The kv module of one process: reads through `ctx.db`, writes buffered per execution (session.ts). */
export function kvModule(ctx: KvContext): HostModule<unknown> {
  const open = (where: string, call: unknown, args: unknown[]): { s: KvSession; collection: string } => {
    const collection = checked<string>(where, "the collection name", args[0], collectionProblem);
    return { s: sessionFor(ctx, asKvCall(call)), collection };
  };
  const parse = (json: string | null) => (json === null ? undefined : (JSON.parse(json) as unknown));

  return {
    name: "kv",
    prelude: PRELUDE,
    handlers: {
      "kv.get": async (call, args) => {
        const { s, collection } = open("kv.get", call, args);
        return parse(await s.read(collection, checked("kv.get", "key", args[1], keyProblem)));
      },
      "kv.has": async (call, args) => {
        const { s, collection } = open("kv.has", call, args);
        return (await s.read(collection, checked("kv.has", "key", args[1], keyProblem))) !== null;
      },
      "kv.set": async (call, args) => {
        const { s, collection } = open("kv.set", call, args);
        const key = checked<string>("kv.set", "key", args[1], keyProblem);
        const value = checkValueJson(args[2]);
        if (!value.ok) throw fail("kv.set", "the value", value.problem);
        const opts = optionsOf("kv.set", args[3], ["ttl_secs"]);
        const ttl = opts.ttl_secs === undefined ? null : checked<number>("kv.set", "ttl_secs", opts.ttl_secs, ttlProblem);
        s.buffer(collection, key, args[2] as string, ttl);
        return undefined;
      },
      "kv.delete": async (call, args) => {
        const { s, collection } = open("kv.delete", call, args);
        const key = checked<string>("kv.delete", "key", args[1], keyProblem);
        const present = (await s.read(collection, key)) !== null;
        s.buffer(collection, key, null, null);
        return present;
      },
      "kv.list": async (call, args) => {
        const { s, collection } = open("kv.list", call, args);
        const opts = optionsOf("kv.list", args[1], ["cursor", "limit", "prefix"]);
        const limit = opts.limit === undefined ? LIST_DEFAULT_LIMIT : checked<number>("kv.list", "limit", opts.limit, limitProblem);
        const prefix = opts.prefix === undefined ? "" : checked<string>("kv.list", "prefix", opts.prefix, prefixProblem);
        const after = decodeCursor(opts.cursor, collection, prefix);
        const page = await s.range(collection, prefix, after, limit);
        const last = page.items[page.items.length - 1];
        return {
          items: page.items.map((i) => ({ key: i.key, value: JSON.parse(i.json) as unknown })),
          cursor: page.more && last ? encodeCursor(collection, prefix, last.key) : null,
        };
      },
    },
  };
}
