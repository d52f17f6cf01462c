// KV browsing through the admin API: collections, keys, one key, writes; paging and validation;
// the role matrix (viewer reads, editor writes) and token scopes on every endpoint.
import test from "ava";
import { MAX_VALUE_BYTES } from "../lib/kv/index.ts";
import { scopedToken, startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
const V1 = "/api/v1/admin";
const KV = `${V1}/apps/shop/kv`;

test.before(async () => {
  g = await startGateway();
  T = await team(g, "shop");
});
test.after.always(() => g?.close());

test("put inserts (201) then updates (200); get shows the value and its times; delete is 204 then 404", async (t) => {
  const api = g.api(T.editor.token);
  const put = await api.put(`${KV}/users/keys/ada`, { value: { name: "Ada", langs: ["en"] } });
  t.is(put.status, 201);
  t.like(put.body, { collection: "users", key: "ada", value: { name: "Ada", langs: ["en"] }, op: "insert", expires_at: null });
  t.is(put.body.bytes, JSON.stringify({ name: "Ada", langs: ["en"] }).length);
  const again = await api.put(`${KV}/users/keys/ada`, { value: 2, ttl_secs: 60 });
  t.is(again.status, 200);
  t.like(again.body, { value: 2, op: "update" });
  t.true(Date.parse(again.body.expires_at) > Date.now() + 50_000);
  const got = await g.api(T.viewer.token).get(`${KV}/users/keys/ada`);
  t.is(got.status, 200);
  t.like(got.body, { collection: "users", key: "ada", value: 2 });
  t.truthy(Date.parse(got.body.created_at));
  t.is((await api.delete(`${KV}/users/keys/ada`)).status, 204);
  t.is((await api.delete(`${KV}/users/keys/ada`)).status, 404);
  t.is((await g.api(T.viewer.token).get(`${KV}/users/keys/ada`)).status, 404);
});

test("collections and keys are listed in order, paged with an opaque cursor, filtered by prefix", async (t) => {
  const api = g.api(T.editor.token);
  for (const c of ["col-b", "col-a", "col-c"]) for (let i = 0; i < 3; i++) await api.put(`${KV}/${c}/keys/k${i}`, { value: i });
  const cols: { name: string; keys: number }[] = [];
  let cursor: string | null = null;
  do {
    const r: any = await g.api(T.viewer.token).get(`${KV}?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    cols.push(...r.body.items);
    cursor = r.body.cursor;
  } while (cursor);
  t.deepEqual(cols.filter((c) => c.name.startsWith("col-")), [{ name: "col-a", keys: 3 }, { name: "col-b", keys: 3 }, { name: "col-c", keys: 3 }]);
  const page1 = await g.api(T.viewer.token).get(`${KV}/col-a/keys?limit=2`);
  t.deepEqual(page1.body.items.map((i: { key: string }) => i.key), ["k0", "k1"]);
  t.false("value" in page1.body.items[0]);
  t.like(page1.body.items[0], { bytes: 1, expires_at: null });
  const page2 = await g.api(T.viewer.token).get(`${KV}/col-a/keys?limit=2&cursor=${page1.body.cursor}`);
  t.deepEqual(page2.body.items.map((i: { key: string }) => i.key), ["k2"]);
  t.is(page2.body.cursor, null);
  t.deepEqual((await g.api(T.viewer.token).get(`${KV}/col-a/keys?prefix=k1`)).body.items.map((i: { key: string }) => i.key), ["k1"]);
  t.deepEqual((await g.api(T.viewer.token).get(`${KV}/nothing-here/keys`)).body, { items: [], cursor: null });
});

test("validation: 400 naming the field, and nothing is written", async (t) => {
  const api = g.api(T.editor.token);
  const cases: [string, unknown, string][] = [
    [`${KV}/v/keys/k`, {}, "value"],
    [`${KV}/v/keys/k`, { value: 1, ttl_secs: 0 }, "ttl_secs"],
    [`${KV}/v/keys/k`, { value: 1, ttl_secs: "60" }, "ttl_secs"],
    [`${KV}/v/keys/k`, { value: 1, extra: true }, "extra"],
    [`${KV}/v/keys/k`, { value: { s: "a\u0000b" } }, "value"],
    [`${KV}/v/keys/k`, { value: "x".repeat(MAX_VALUE_BYTES) }, "value"],
    [`${KV}/v/keys/${"k".repeat(1025)}`, { value: 1 }, "key"],
    [`${KV}/${"c".repeat(257)}/keys/k`, { value: 1 }, "collection"],
  ];
  for (const [path, payload, field] of cases) {
    const r = await api.put(path, payload);
    t.is(r.status, 400, `${field}: ${JSON.stringify(r.body)}`);
    t.is(r.body.field, field);
  }
  const big = await api.put(`${KV}/v/keys/k`, { value: "x".repeat(MAX_VALUE_BYTES) });
  t.regex(big.body.message, /over the limit of 262144 bytes/);
  t.is((await api.putRaw(`${KV}/v/keys/k`, "{nope")).body.field, "body");
  t.is((await g.api(T.viewer.token).get(`${KV}/v/keys/k`)).status, 404);
  for (const q of ["limit=0", "limit=201", "cursor=zzz"]) t.is((await g.api(T.viewer.token).get(`${KV}/v/keys?${q}`)).status, 400, q);
  t.is((await g.api(T.viewer.token).get(`${KV}?cursor=zzz`)).body.field, "cursor");
});

test("roles: viewer reads, editor and above write, outsiders see nothing; scopes narrow tokens", async (t) => {
  await g.api(T.editor.token).put(`${KV}/roles/keys/k`, { value: 1 });
  const reads = [`${KV}`, `${KV}/roles/keys`, `${KV}/roles/keys/k`];
  const matrix: [string, string, number, number][] = [
    // who, token, read status, write status
    ["viewer", T.viewer.token, 200, 403],
    ["editor", T.editor.token, 200, 200],
    ["app_admin", T.appAdmin.token, 200, 200],
    ["owner", T.owner, 200, 200],
    ["outsider", T.outsider.token, 404, 404],
  ];
  for (const [who, token, read, write] of matrix) {
    for (const path of reads) t.is((await g.api(token).get(path)).status, read, `${who} GET ${path}`);
    t.is((await g.api(token).put(`${KV}/roles/keys/w-${who}`, { value: who })).status, write === 200 ? 201 : write, `${who} PUT`);
    t.is((await g.api(token).delete(`${KV}/roles/keys/w-${who}`)).status, write === 200 ? 204 : write, `${who} DELETE`);
  }
  t.is((await g.api().get(`${KV}`)).status, 401);
  const readOnly = await scopedToken(g, T.editor.token, ["read"]);
  t.is((await g.api(readOnly).get(`${KV}/roles/keys/k`)).status, 200);
  t.is((await g.api(readOnly).put(`${KV}/roles/keys/k`, { value: 2 })).status, 403);
  t.is((await g.api(readOnly).delete(`${KV}/roles/keys/k`)).status, 403);
  const writeOnly = await scopedToken(g, T.editor.token, ["write"]);
  t.is((await g.api(writeOnly).get(`${KV}/roles/keys/k`)).status, 403);
  t.is((await g.api(writeOnly).put(`${KV}/roles/keys/k`, { value: 3 })).status, 200);
  const executeOnly = await scopedToken(g, T.owner, ["execute"]);
  t.is((await g.api(executeOnly).get(`${KV}`)).status, 403);
});
