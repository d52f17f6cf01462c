// The script SDK `kv` (SPEC section 5), run through the direct-execute path of an in-process
// gateway against a real Postgres: semantics, limits and errors, TTL, listing, per-execution
// atomicity. Trigger and outbox paths are in triggers-*.test.ts.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { deleteExpired, LIST_MAX_LIMIT, MAX_VALUE_BYTES } from "../lib/kv/index.ts";
import { startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
const V1 = "/api/v1/admin";
let n = 0;

test.before(async () => {
  g = await startGateway({ PICLOUD_EXECUTOR_WORKERS: "4" });
  T = await team(g, "shop");
});
test.after.always(() => g?.close());

/** Runs `body` (the inside of an async default export) once; returns its value or its error. */
async function run(body: string, limits: { timeout_ms?: number } = {}): Promise<{ ok: true; value: any } | { ok: false; code: string; message: string }> {
  const s = await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: `s${++n}`, source: `export default async (ctx) => { ${body} }`, ...limits });
  if (s.status !== 201) throw new Error(`script: ${JSON.stringify(s.body)}`);
  const r = await g.api(T.editor.token).post(`/api/v1/execute/${s.body.id}`, {});
  if (r.status !== 200) throw new Error(`execute: ${r.status} ${JSON.stringify(r.body)}`);
  if (r.body.status !== "succeeded") return { ok: false, code: r.body.error.code, message: r.body.error.message };
  const text = r.body.response.body;
  return { ok: true, value: text === "" ? undefined : JSON.parse(text) };
}
async function value(t: { fail(m: string): void }, body: string): Promise<any> {
  const r = await run(body);
  if (!r.ok) t.fail(`script failed: ${r.code} ${r.message}`);
  return r.ok ? r.value : undefined;
}
async function error(t: { fail(m: string): void }, body: string): Promise<string> {
  const r = await run(body);
  if (r.ok) t.fail(`script succeeded: ${JSON.stringify(r.value)}`);
  return r.ok ? "" : r.message;
}
const stored = (collection: string, key: string) =>
  g.db.maybeOne(sql.unsafe`SELECT value::text AS json, expires_at FROM kv_entries WHERE app_id = ${T.appId} AND collection = ${collection} AND key = ${key}`);

test("get/set/has/delete: JSON values round-trip, delete says whether the key was there", async (t) => {
  const v = await value(
    t,
    `const c = kv.collection("basics");
     const before = { get: await c.get("k"), has: await c.has("k") };
     await c.set("k", { b: 1, a: [true, null, "x", 1.5] });
     await c.set("n", null);
     const after = { get: await c.get("k"), has: await c.has("k"), nullHas: await c.has("n"), nullGet: await c.get("n") };
     const del = [await c.delete("k"), await c.delete("k"), await c.delete("never")];
     return { before: [before.get === undefined, before.has], after, del, gone: (await c.get("k")) === undefined };`,
  );
  t.deepEqual(v.before, [true, false]);
  t.deepEqual(v.after, { get: { b: 1, a: [true, null, "x", 1.5] }, has: true, nullHas: true, nullGet: null });
  t.deepEqual(v.del, [true, false, false]);
  t.true(v.gone);
  // stored as written: an object's keys keep their order
  t.is((await value(t, `return await kv.collection("basics").get("n")`)) ?? null, null);
  await value(t, `await kv.collection("order").set("o", { z: 1, a: 2, m: { y: 1, b: 2 } })`);
  t.is((await stored("order", "o"))!.json, '{"z":1,"a":2,"m":{"y":1,"b":2}}');
  t.deepEqual(Object.keys(await value(t, `return await kv.collection("order").get("o")`)), ["z", "a", "m"]);
});

test("a second execution sees the first one's committed writes; set overwrites", async (t) => {
  await value(t, `await kv.collection("hits").set("/a", 1)`);
  await value(t, `const h = kv.collection("hits"); await h.set("/a", ((await h.get("/a")) ?? 0) + 1)`);
  t.is(await value(t, `return await kv.collection("hits").get("/a")`), 2);
});

test("collection and key must be non-empty strings: the error names the problem", async (t) => {
  t.regex(await error(t, `kv.collection("")`), /kv\.collection: the collection name must be a non-empty string, got an empty string/);
  t.regex(await error(t, `kv.collection(42)`), /collection name must be a non-empty string, got number/);
  t.regex(await error(t, `kv.collection()`), /got undefined/);
  t.regex(await error(t, `await kv.collection("c").get("")`), /kv\.get: key must be a non-empty string, got an empty string/);
  t.regex(await error(t, `await kv.collection("c").set(7, 1)`), /kv\.set: key must be a non-empty string, got number/);
  t.regex(await error(t, `await kv.collection("c").has(null)`), /kv\.has: key must be a non-empty string, got null/);
  t.regex(await error(t, `await kv.collection("c").delete({})`), /kv\.delete: key must be a non-empty string, got object/);
  // the host checks again: a script calling the primitive directly gets the same answers
  t.regex(await error(t, `await __host("kv.get", [["x"], "k"])`), /the collection name must be a non-empty string, got an array/);
  t.regex(await error(t, `await __host("kv.set", ["c", "k", "{oops", null])`), /kv\.set: the value is not valid JSON/);
  t.regex(await error(t, `await __host("kv.get", ["c", "x".repeat(1025)])`), /key must be at most 1024 bytes/);
  t.regex(await error(t, `await kv.collection("c").get("a\\u0000b")`), /must not contain the NUL character/);
  t.regex(await error(t, `await kv.collection("c").get("\\ud800")`), /well-formed Unicode/);
});

test("values: JSON only, capped in size with a clear error", async (t) => {
  t.regex(await error(t, `await kv.collection("v").set("k", undefined)`), /kv\.set: the value is not JSON-serializable \(undefined\)/);
  t.regex(await error(t, `await kv.collection("v").set("k", () => 1)`), /not JSON-serializable \(function\)/);
  t.regex(await error(t, `const a = {}; a.a = a; await kv.collection("v").set("k", a)`), /not JSON-serializable/);
  t.regex(await error(t, `await kv.collection("v").set("k", 10n)`), /not JSON-serializable/);
  t.regex(await error(t, `await kv.collection("v").set("k", { s: "a\\u0000" })`), /has a string that must not contain the NUL character/);
  const big = await error(t, `await kv.collection("v").set("big", "x".repeat(${MAX_VALUE_BYTES}))`);
  t.is(big, `kv.set: the value is ${MAX_VALUE_BYTES + 2} bytes of JSON, over the limit of ${MAX_VALUE_BYTES} bytes`);
  t.is(await stored("v", "big"), null);
  // exactly at the cap is fine
  await value(t, `await kv.collection("v").set("edge", "x".repeat(${MAX_VALUE_BYTES - 2}))`);
  t.is((await stored("v", "edge"))!.json.length, MAX_VALUE_BYTES);
  t.regex(await error(t, `await kv.collection("v").set("k", 1, { ttl: 5 })`), /kv\.set: unknown option "ttl" \(known: ttl_secs\)/);
  t.regex(await error(t, `await kv.collection("v").set("k", 1, { ttl_secs: 0 })`), /ttl_secs must be an integer number of seconds from 1/);
  t.regex(await error(t, `await kv.collection("v").set("k", 1, { ttl_secs: 1.5 })`), /ttl_secs must be an integer/);
  t.regex(await error(t, `await kv.collection("v").set("k", 1, "soon")`), /kv\.set: options must be an object, got string/);
});

test("TTL: a key is invisible once expired (get, has, list, delete), and the sweeper removes it", async (t) => {
  await value(t, `const c = kv.collection("ttl"); await c.set("short", 1, { ttl_secs: 60 }); await c.set("long", 2, { ttl_secs: 3600 }); await c.set("forever", 3)`);
  const row = await stored("ttl", "short");
  const expires = Date.parse(row!.expires_at as string);
  t.true(Math.abs(expires - (Date.now() + 60_000)) < 5_000);
  t.deepEqual(await value(t, `return (await kv.collection("ttl").list()).items.map((i) => i.key)`), ["forever", "long", "short"]);
  // time passes for "short"
  await g.db.query(sql.unsafe`UPDATE kv_entries SET expires_at = now() - interval '1 millisecond' WHERE app_id = ${T.appId} AND collection = 'ttl' AND key = 'short'`);
  const v = await value(
    t,
    `const c = kv.collection("ttl");
     return { get: (await c.get("short")) === undefined, has: await c.has("short"), keys: (await c.list()).items.map((i) => i.key), del: await c.delete("short") };`,
  );
  t.deepEqual(v, { get: true, has: false, keys: ["forever", "long"], del: false });
  // the admin API does not see it either
  t.is((await g.api(T.viewer.token).get(`${V1}/apps/shop/kv/ttl/keys/short`)).status, 404);
  // setting an expired key again is an insert with a fresh TTL (or none)
  await g.db.query(sql.unsafe`UPDATE kv_entries SET expires_at = now() - interval '1 second' WHERE app_id = ${T.appId} AND collection = 'ttl' AND key = 'long'`);
  t.true((await deleteExpired(g.db)) >= 1);
  t.is(await stored("ttl", "long"), null);
  t.truthy(await stored("ttl", "forever"));
  // set without ttl_secs makes a key permanent again
  await value(t, `const c = kv.collection("ttl"); await c.set("p", 1, { ttl_secs: 5 }); `);
  await value(t, `await kv.collection("ttl").set("p", 2)`);
  t.is((await stored("ttl", "p"))!.expires_at, null);
});

test("list: ordered by key (code points), default 100, at most 1000, prefix, opaque cursor, clear errors", async (t) => {
  const keys = Array.from({ length: 250 }, (_, i) => `k${String(i).padStart(3, "0")}`);
  await value(t, `const c = kv.collection("many"); for (const k of ${JSON.stringify(keys)}) await c.set(k, k.length)`);
  const first = await value(t, `return await kv.collection("many").list()`);
  t.is(first.items.length, 100);
  t.deepEqual(first.items.map((i: { key: string }) => i.key), keys.slice(0, 100));
  t.is(typeof first.cursor, "string");
  t.false(first.cursor.includes("k099"));
  const all: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: any = await value(t, `return await kv.collection("many").list({ limit: 70, cursor: ${JSON.stringify(cursor)} })`);
    all.push(...page.items.map((i: { key: string }) => i.key));
    cursor = page.cursor;
    pages++;
  } while (cursor);
  t.deepEqual(all, keys);
  t.is(pages, 4);
  const pre = await value(t, `return await kv.collection("many").list({ prefix: "k20", limit: 5 })`);
  t.deepEqual(pre.items.map((i: { key: string }) => i.key), ["k200", "k201", "k202", "k203", "k204"]);
  const rest = await value(t, `return await kv.collection("many").list({ prefix: "k20", cursor: ${JSON.stringify(pre.cursor)} })`);
  t.deepEqual(rest.items.map((i: { key: string }) => i.key), ["k205", "k206", "k207", "k208", "k209"]);
  t.is(rest.cursor, null);
  t.is((await value(t, `return await kv.collection("many").list({ limit: ${LIST_MAX_LIMIT} })`)).items.length, 250);

  for (const [opts, msg] of [
    ["{ limit: 0 }", /kv\.list: limit must be an integer from 1 to 1000, got 0/],
    ["{ limit: 1001 }", /limit must be an integer from 1 to 1000, got 1001/],
    ["{ limit: 2.5 }", /limit must be an integer/],
    ["{ limit: '10' }", /limit must be an integer from 1 to 1000, got string/],
    ["{ prefix: 3 }", /kv\.list: prefix must be a string/],
    ["{ cursor: 'nope!' }", /kv\.list: cursor is not one returned by list/],
    ["{ cursor: 'bm9wZQ' }", /cursor is not one returned by list/],
    ["{ cursr: 'x' }", /kv\.list: unknown option "cursr"/],
    ["[]", /options must be an object/],
  ] as const) t.regex(await error(t, `await kv.collection("many").list(${opts})`), msg, opts);
  // a cursor of one listing does not continue another
  t.regex(await error(t, `await kv.collection("other").list({ cursor: ${JSON.stringify(first.cursor)} })`), /cursor belongs to a list of another collection or prefix/);

  // order is by code point (UTF-8 bytes), whatever the server locale: "B" < "a" < "é" < "😀" (U+1F600) after "ｚ" (U+FF5A)
  await value(t, `const c = kv.collection("codepoints"); for (const k of ["a", "é", "B", "😀", "ｚ", "a b", "a-b"]) await c.set(k, 1)`);
  t.deepEqual(await value(t, `return (await kv.collection("codepoints").list()).items.map((i) => i.key)`), ["B", "a", "a b", "a-b", "é", "ｚ", "😀"]);
});

test("an execution reads its own writes, in get, has and list (merged in key order)", async (t) => {
  await value(t, `const c = kv.collection("ryw"); for (const k of ["a", "c", "e", "g"]) await c.set(k, "old-" + k)`);
  const v = await value(
    t,
    `const c = kv.collection("ryw");
     await c.set("b", "new-b"); await c.set("c", "new-c"); await c.delete("e"); await c.set("z", 1, { ttl_secs: 100 });
     const p1 = await c.list({ limit: 3 });
     const p2 = await c.list({ limit: 3, cursor: p1.cursor });
     return { get: [await c.get("b"), await c.get("c"), await c.get("e") === undefined], has: [await c.has("b"), await c.has("e")],
              p1: p1.items, p2: p2.items, end: p2.cursor };`,
  );
  t.deepEqual(v.get, ["new-b", "new-c", true]);
  t.deepEqual(v.has, [true, false]);
  t.deepEqual(v.p1, [{ key: "a", value: "old-a" }, { key: "b", value: "new-b" }, { key: "c", value: "new-c" }]);
  t.deepEqual(v.p2, [{ key: "g", value: "old-g" }, { key: "z", value: 1 }]);
  t.is(v.end, null);
});

test("atomic per execution: a script that throws after writing leaves no write behind; one that succeeds commits them all", async (t) => {
  const r = await run(`const c = kv.collection("atomic"); await c.set("a", 1); await c.delete("keep"); await c.set("b", 2); throw new Error("after the writes")`);
  t.false(r.ok);
  t.is(await stored("atomic", "a"), null);
  t.is(await stored("atomic", "b"), null);
  await value(t, `await kv.collection("atomic").set("keep", 1)`);
  const failed = await run(`await kv.collection("atomic").delete("keep"); return { status: 42 }`);
  t.false(failed.ok, "an invalid return value is a failure too");
  t.truthy(await stored("atomic", "keep"));
  const slow = await run(`await kv.collection("atomic").set("late", 1); const end = Date.now() + 10000; while (Date.now() < end) {}`, { timeout_ms: 300 });
  t.false(slow.ok);
  t.is(await stored("atomic", "late"), null);
  await value(t, `const c = kv.collection("atomic"); await c.set("a", 1); await c.set("b", 2); await c.delete("keep")`);
  t.truthy(await stored("atomic", "a"));
  t.truthy(await stored("atomic", "b"));
  t.is(await stored("atomic", "keep"), null);
});

test("list across 2,500 keys while another writer inserts: every key present throughout appears exactly once, in order", async (t) => {
  const keys = Array.from({ length: 2500 }, (_, i) => `item:${String(i * 2).padStart(5, "0")}`);
  await g.db.query(sql.unsafe`
    INSERT INTO kv_entries (app_id, collection, key, value)
    SELECT ${T.appId}, 'big', k, '1' FROM unnest(${sql.array(keys, "text")}) AS k`);
  // the page-by-page walk runs in scripts while odd keys (interleaved with the even ones) are
  // inserted through the admin API
  let inserting = true;
  const inserted: string[] = [];
  const writer = (async () => {
    for (let i = 0; inserting && i < 2500; i += 7) {
      const k = `item:${String(i * 2 + 1).padStart(5, "0")}`;
      const r = await g.api(T.editor.token).put(`${V1}/apps/shop/kv/big/keys/${encodeURIComponent(k)}`, { value: 2 });
      if (r.status === 201) inserted.push(k);
    }
  })();
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: any = await value(t, `return await kv.collection("big").list({ limit: 300, cursor: ${JSON.stringify(cursor)} })`);
    seen.push(...page.items.map((i: { key: string }) => i.key));
    cursor = page.cursor;
    pages++;
  } while (cursor);
  inserting = false;
  await writer;
  t.true(pages >= 9);
  t.deepEqual(seen, [...seen].sort(), "in key order");
  t.is(new Set(seen).size, seen.length, "no key twice");
  const even = seen.filter((k) => Number(k.slice(5)) % 2 === 0);
  t.deepEqual(even, keys, "every key that existed throughout, once");
  t.true(seen.every((k) => keys.includes(k) || inserted.includes(k)));
});
