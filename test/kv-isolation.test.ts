// Cross-app isolation of the store: two apps with the same and with hostile collection and key
// names (`../`, `%`, `_`, `\`, quotes, NUL), forged cursors, and the admin API's paths. Nothing
// in a name, key or cursor reaches the other app's data.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
let rivalToken: string;
const V1 = "/api/v1/admin";
let n = 0;

const HOSTILE = ["../shop", "..", "%", "_", "\\", "%_\\", "' OR '1'='1", "c", "*", "/", "a/../b"];

test.before(async () => {
  g = await startGateway({ PICLOUD_EXECUTOR_WORKERS: "2" });
  T = await team(g, "shop");
  // the outsider makes their own app (and is its app_admin)
  rivalToken = T.outsider.token;
  const r = await g.api(rivalToken).post(`${V1}/apps`, { slug: "rival", name: "rival" });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  // rival's secrets under every hostile name, as collection and as key
  const writes = HOSTILE.flatMap((c) => HOSTILE.map((k) => [c, k]));
  await as(rivalToken, "rival", `for (const [c, k] of ${JSON.stringify(writes)}) await kv.collection(c).set(k, "rival-secret")`);
  // shop has one key in a few of the same places
  await as(T.editor.token, "shop", `for (const c of ["c", "%", "_"]) { await kv.collection(c).set("mine", "shop-" + c); await kv.collection(c).set("%x", 1); await kv.collection(c).set("_y", 2); await kv.collection(c).set("\\\\z", 3); await kv.collection(c).set("ab", 4); }`);
});
test.after.always(() => g?.close());

async function as(token: string, app: string, body: string): Promise<any> {
  const s = await g.api(token).post(`${V1}/apps/${app}/scripts`, { name: `s${++n}`, source: `export default async (ctx) => { ${body} }` });
  if (s.status !== 201) throw new Error(`script: ${JSON.stringify(s.body)}`);
  const r = await g.api(token).post(`/api/v1/execute/${s.body.id}`, {});
  if (r.body.status !== "succeeded") return { error: r.body.error.message };
  return r.body.response.body === "" ? undefined : JSON.parse(r.body.response.body);
}
const shop = (body: string) => as(T.editor.token, "shop", body);

test("same names in two apps are two different keys", async (t) => {
  const v = await shop(`return [await kv.collection("c").get("mine"), await kv.collection("c").get("c"), await kv.collection("../shop").get("c")]`);
  t.deepEqual(v, ["shop-c", null, null]);
  t.deepEqual(await as(rivalToken, "rival", `return [await kv.collection("c").get("mine"), await kv.collection("c").get("c")]`), [null, "rival-secret"]);
});

test("hostile collection names and keys reach nothing of the other app", async (t) => {
  const found = await shop(`
    const out = [];
    for (const c of ${JSON.stringify(HOSTILE)}) for (const k of ${JSON.stringify(HOSTILE)}) {
      if (await kv.collection(c).has(k)) out.push([c, k]);
    }
    for (const c of ${JSON.stringify(HOSTILE)}) out.push(...(await kv.collection(c).list({ limit: 1000 })).items.map((i) => [c, i.key, i.value]));
    return out;`);
  // only shop's own rows: the "%x"-style keys in "%" and "_" and "c" are ours
  t.is(found.length, 15, JSON.stringify(found));
  t.true(found.every((row: unknown[]) => row[2] !== "rival-secret"), JSON.stringify(found));
  t.false(found.some((row: unknown[]) => row[1] === "../shop" || row[1] === "'" + " OR '1'='1"));
});

test("prefixes are literal: % _ and \\ match themselves, not as LIKE wildcards", async (t) => {
  const keys = (prefix: string) => shop(`return (await kv.collection("%").list({ prefix: ${JSON.stringify(prefix)} })).items.map((i) => i.key)`);
  t.deepEqual(await keys("%"), ["%x"]);
  t.deepEqual(await keys("_"), ["_y"]);
  t.deepEqual(await keys("\\"), ["\\z"]);
  t.deepEqual(await keys(""), ["%x", "\\z", "_y", "ab", "mine"]);
  t.deepEqual(await keys("a"), ["ab"]);
  t.deepEqual(await keys("%_"), []);
});

test("forged cursors position a read within the caller's own app and collection, or are refused", async (t) => {
  const cursor = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString("base64url");
  // a well-formed cursor naming any key: only positions inside shop's "c"
  const after = await shop(`return (await kv.collection("c").list({ cursor: ${JSON.stringify(cursor(["c", "", "%"]))} })).items`);
  t.deepEqual(after.map((i: { key: string }) => i.key), ["%x", "\\z", "_y", "ab", "mine"]);
  t.false(after.some((i: { value: unknown }) => i.value === "rival-secret"));
  const past = await shop(`return (await kv.collection("c").list({ cursor: ${JSON.stringify(cursor(["c", "", "ab"]))} })).items`);
  t.deepEqual(past.map((i: { key: string }) => i.key), ["mine"]);
  // anything else is refused with the same message
  for (const forged of [
    cursor(["c", "", ""]),
    cursor(["c", ""]),
    cursor(["c", "", "k", T.appId]),
    cursor({ app_id: T.appId, key: "k" }),
    cursor(["c", "", 7]),
    cursor(["c", "", "a\u0000b"]),
    "' OR 1=1 --",
    "",
    "=",
  ]) {
    const r = await shop(`return await kv.collection("c").list({ cursor: ${JSON.stringify(forged)} })`);
    t.is(r.error, "kv.list: cursor is not one returned by list", forged);
  }
  t.regex((await shop(`return await kv.collection("_").list({ cursor: ${JSON.stringify(cursor(["c", "", "a"]))} })`)).error, /another collection or prefix/);
  // rival's rows are never counted either
  const count = await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM kv_entries WHERE app_id = ${T.appId}`);
  t.is(Number(count), 15);
});

test("admin API: another app is not found; hostile names in the path stay inside the app checked", async (t) => {
  const api = g.api(T.viewer.token);
  t.is((await api.get(`${V1}/apps/rival/kv`)).status, 404);
  t.is((await api.get(`${V1}/apps/rival/kv/c/keys/c`)).status, 404);
  t.is((await g.api(T.editor.token).put(`${V1}/apps/rival/kv/c/keys/x`, { value: 1 })).status, 404);
  t.is((await g.api(T.editor.token).delete(`${V1}/apps/rival/kv/c/keys/c`)).status, 404);
  for (const name of HOSTILE.filter((h) => h !== ".." && h !== "a/../b")) {
    const r = await api.get(`${V1}/apps/shop/kv/${encodeURIComponent(name)}/keys`);
    t.is(r.status, 200, name);
    t.false(JSON.stringify(r.body).includes("rival"), name);
  }
  const mine = await api.get(`${V1}/apps/shop/kv/${encodeURIComponent("%")}/keys/${encodeURIComponent("%x")}`);
  t.is(mine.status, 200);
  t.like(mine.body, { collection: "%", key: "%x", value: 1 });
  t.is((await api.get(`${V1}/apps/shop/kv/c/keys/${encodeURIComponent("../shop")}`)).status, 404);
  t.is((await api.get(`${V1}/apps/shop/kv/${encodeURIComponent("../rival")}/keys/c`)).status, 404);
  const nul = await api.get(`${V1}/apps/shop/kv/c/keys/a%00b`);
  t.is(nul.status, 400);
  t.is(nul.body.field, "key");
  const prefix = await api.get(`${V1}/apps/shop/kv/c/keys?prefix=${encodeURIComponent("%")}`);
  t.deepEqual(prefix.body.items.map((i: { key: string }) => i.key), ["%x"]);
  // the collections list counts shop's only
  const cols = (await api.get(`${V1}/apps/shop/kv`)).body.items;
  t.deepEqual(cols, [{ name: "%", keys: 5 }, { name: "_", keys: 5 }, { name: "c", keys: 5 }]);
});
