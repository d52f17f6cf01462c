// KV triggers end to end (gateway + 2 dispatchers + sweeper as real processes): glob matching,
// op classification, ctx.event, a script's writes and their events committing only with it,
// enable/disable, and triggered executions in the executions list with trigger, depth, root
// execution and attempts.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

let p: Platform;
let token: string;
const V1 = "/api/v1/admin";
const tag = (name: string) => `export default (ctx) => ({ tag: ${JSON.stringify(name)}, event: ctx.event, depth: ctx.trigger_depth, request: ctx.request })`;

test.before(async () => {
  p = await startPlatform({ dispatchers: 2 });
  token = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
});
test.after.always(() => p?.close());

async function app(slug: string): Promise<string> {
  const r = await p.api(token).post(`${V1}/apps`, { slug, name: slug });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}
async function script(slug: string, name: string, source: string, route?: Record<string, unknown>): Promise<string> {
  const s = await p.api(token).post(`${V1}/apps/${slug}/scripts`, { name, source });
  if (s.status !== 201) throw new Error(JSON.stringify(s.body));
  if (route) {
    const r = await p.api(token).post(`${V1}/scripts/${s.body.id}/routes`, route);
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  }
  return s.body.id;
}
async function trigger(slug: string, scriptId: string, collection_glob: string, ops: string[], retry?: Record<string, unknown>): Promise<string> {
  const r = await p.api(token).post(`${V1}/apps/${slug}/triggers/kv`, { script_id: scriptId, collection_glob, ops, ...(retry ? { retry } : {}) });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}
/** Triggered executions of an app once the outbox has none left for it. */
async function settled(appId: string, expected: number): Promise<any[]> {
  await waitUntil(async () => {
    const pending = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE app_id = ${appId}`));
    const done = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE app_id = ${appId} AND kind = 'kv'`));
    return pending === 0 && done >= expected;
  }, 20_000);
  const rows = await p.db.any(sql.unsafe`SELECT id, trigger_id, status, trigger_depth, root_execution_id, attempts, response FROM executions WHERE app_id = ${appId} AND kind = 'kv' ORDER BY queued_at`);
  return rows.map((r: any) => ({ ...r, body: r.response ? JSON.parse(r.response.body) : null }));
}
const put = (slug: string, c: string, k: string, value: unknown) => p.api(token).put(`${V1}/apps/${slug}/kv/${encodeURIComponent(c)}/keys/${encodeURIComponent(k)}`, { value });
const del = (slug: string, c: string, k: string) => p.api(token).delete(`${V1}/apps/${slug}/kv/${encodeURIComponent(c)}/keys/${encodeURIComponent(k)}`);

test("globs (*, prefix*, exact) and ops select the triggers; op is insert, update or delete; deleting an absent key fires nothing", async (t) => {
  const appId = await app("globs");
  const all = await trigger("globs", await script("globs", "all", tag("all")), "*", ["insert", "update", "delete"]);
  const ord = await trigger("globs", await script("globs", "ord", tag("ord")), "ord*", ["insert"]);
  const exact = await trigger("globs", await script("globs", "exact", tag("exact")), "orders", ["delete"]);
  const none = await trigger("globs", await script("globs", "none", tag("none")), "other", ["insert", "update", "delete"]);
  t.is((await put("globs", "orders", "k1", { n: 1 })).status, 201); // insert: all, ord
  t.is((await put("globs", "orders", "k1", { n: 2 })).status, 200); // update: all
  t.is((await del("globs", "orders", "k1")).status, 204); // delete: all, exact
  t.is((await del("globs", "orders", "k1")).status, 404); // absent: nothing
  await put("globs", "order-lines", "x", 1); // insert: all, ord
  await put("globs", "ord", "y", 2); // insert: all, ord
  await put("globs", "misc", "z", 3); // insert: all
  await put("globs", "Orders", "w", 4); // insert: all (exact names are case-sensitive; ord* is not Ord*)
  const runs = await settled(appId, 11);
  const by = (id: string) => runs.filter((r) => r.trigger_id === id);
  t.is(runs.length, 11);
  t.true(runs.every((r) => r.status === "succeeded"));
  t.is(by(none).length, 0);
  t.deepEqual(by(exact).map((r) => r.body.event), [{ type: "kv", op: "delete", collection: "orders", key: "k1", value: null, old_value: { n: 2 } }]);
  t.deepEqual(by(ord).map((r) => `${r.body.event.collection}/${r.body.event.key}`).sort(), ["ord/y", "order-lines/x", "orders/k1"]);
  t.true(by(ord).every((r) => r.body.event.op === "insert"));
  const allEvents = by(all).map((r) => r.body.event);
  t.is(allEvents.length, 7);
  t.deepEqual(allEvents.find((e) => e.op === "insert" && e.key === "k1"), { type: "kv", op: "insert", collection: "orders", key: "k1", value: { n: 1 }, old_value: null });
  t.deepEqual(allEvents.find((e) => e.op === "update"), { type: "kv", op: "update", collection: "orders", key: "k1", value: { n: 2 }, old_value: { n: 1 } });
  t.deepEqual(allEvents.filter((e) => e.op === "delete").length, 1);
  // triggered executions: no request, ctx.event present; each starts its own lineage at depth 0 (an admin write)
  for (const r of runs) {
    t.is(r.body.request, null);
    t.is(r.trigger_depth, 0);
    t.is(r.root_execution_id, r.id);
    t.is(r.attempts, 1);
  }
});

test("a script's writes classify per write in order, and fire only when the execution succeeds", async (t) => {
  const appId = await app("ops");
  const seen = await trigger("ops", await script("ops", "seen", tag("seen")), "items", ["insert", "update", "delete"]);
  await script(
    "ops",
    "writer",
    `export default async (ctx) => {
       const c = kv.collection("items");
       await c.set("k", 1); await c.set("k", 2); await c.delete("k"); await c.delete("k");
       await c.set("j", "a"); await c.set("old", "x", { ttl_secs: 1 });
       if (ctx.request.query.fail) throw new Error("changed my mind");
       return { id: ctx.execution_id };
     }`,
    { path: "/ops/write" },
  );
  // a script that throws after writing: neither the writes nor their events
  const failed = await fetch(`${p.url}/ops/write?fail=1`);
  t.is(failed.status, 502);
  await new Promise((r) => setTimeout(r, 500));
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM kv_entries WHERE app_id = ${appId}`)), 0);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE app_id = ${appId} AND kind = 'kv'`)), 0);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE app_id = ${appId} AND kind = 'kv'`)), 0);

  // one that succeeds: when its caller has the answer, the writes and the rows they fire are committed
  const ok = await fetch(`${p.url}/ops/write`);
  t.is(ok.status, 200);
  const writer = (await ok.json()).id;
  t.deepEqual(await p.db.anyFirst(sql.unsafe`SELECT key FROM kv_entries WHERE app_id = ${appId} ORDER BY key`), ["j", "old"]);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT (SELECT count(*) FROM outbox WHERE app_id = ${appId} AND kind = 'kv') + (SELECT count(*) FROM executions WHERE app_id = ${appId} AND kind = 'kv')`)), 5);
  const runs = await settled(appId, 5);
  t.deepEqual(runs.map((r) => [r.body.event.key, r.body.event.op, r.body.event.value, r.body.event.old_value]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
    ["j", "insert", "a", null],
    ["k", "delete", null, 2],
    ["k", "insert", 1, null],
    ["k", "update", 2, 1],
    ["old", "insert", "x", null],
  ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))));
  // the lineage: caused by the route's execution (depth 0), they run at depth 1 under its root
  for (const r of runs) {
    t.is(r.trigger_id, seen);
    t.is(r.trigger_depth, 1);
    t.is(r.body.depth, 1);
    t.is(r.root_execution_id, writer);
  }
  // an expired key set again is an insert
  await p.db.query(sql.unsafe`UPDATE kv_entries SET expires_at = now() - interval '1 second' WHERE app_id = ${appId} AND key = 'old'`);
  await put("ops", "items", "old", "y");
  const again = await settled(appId, 6);
  t.deepEqual(again.at(-1)!.body.event, { type: "kv", op: "insert", collection: "items", key: "old", value: "y", old_value: null });
});

test("disabled and deleted triggers fire nothing; enabling one again does", async (t) => {
  const appId = await app("toggles");
  const id = await trigger("toggles", await script("toggles", "t", tag("t")), "*", ["insert", "update"]);
  await p.api(token).post(`${V1}/apps/toggles/triggers/${id}/disable`);
  await put("toggles", "c", "a", 1);
  await p.api(token).post(`${V1}/apps/toggles/triggers/${id}/enable`);
  await put("toggles", "c", "b", 1);
  const runs = await settled(appId, 1);
  t.deepEqual(runs.map((r) => r.body.event.key), ["b"]);
  t.is((await p.api(token).delete(`${V1}/apps/toggles/triggers/${id}`)).status, 204);
  await put("toggles", "c", "c", 1);
  await new Promise((r) => setTimeout(r, 300));
  t.is((await settled(appId, 1)).length, 1);
});

test("triggered executions are listed with their trigger, depth, root execution and attempts", async (t) => {
  await app("listed");
  const id = await trigger("listed", await script("listed", "flaky", `export default (ctx) => { if (ctx.event.value.fail) throw new Error("once more"); return 1; }`), "*", ["insert"], {
    max_attempts: 2,
    base_ms: 50,
  });
  await put("listed", "c", "ok", { fail: false });
  await put("listed", "c", "bad", { fail: true });
  let items: any[] = [];
  await waitUntil(async () => {
    items = (await p.api(token).get(`${V1}/apps/listed/executions`)).body.items;
    return items.filter((e) => e.status === "succeeded" || e.status === "failed").length === 2;
  }, 15_000);
  for (const e of items) {
    t.is(e.kind, "kv");
    t.is(e.trigger_id, id);
    t.is(e.trigger_depth, 0);
    t.is(e.root_execution_id, e.id);
  }
  t.deepEqual(items.map((e) => [e.status, e.attempts]).sort(), [["failed", 2], ["succeeded", 1]]);
  const shown = (await p.api(token).get(`${V1}/executions/${items.find((e) => e.status === "failed").id}`)).body;
  t.like(shown, { kind: "kv", trigger_id: id, attempts: 2, status: "failed" });
  t.is(shown.error.message, "once more");
});
