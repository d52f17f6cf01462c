// Scripts (compile check, limits, versions) and their routes (validation, conflicts, PATCH), with
// the role matrix, scopes and another app's resources.
// Tests that count rows to prove "nothing written" are serial (ava runs them before the rest).
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { loadRouteTable, matchRoute } from "../lib/routes/index.ts";
import { scopedToken, startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
let scriptId: string;
/** A script of another app (made by the outsider) */
let foreign: { appId: string; scriptId: string; routeId: string };
const V1 = "/api/v1/admin";
const OK = "export default () => 1";

test.before(async () => {
  g = await startGateway();
  T = await team(g);
  scriptId = (await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "hello", source: OK })).body.id;
  const other = g.api(T.outsider.token);
  const app = await other.post(`${V1}/apps`, { slug: "elsewhere", name: "E" });
  const s = await other.post(`${V1}/apps/elsewhere/scripts`, { name: "theirs", source: OK });
  const r = await other.post(`${V1}/scripts/${s.body.id}/routes`, { host_kind: "exact", host: "elsewhere.test", path: "/theirs" });
  foreign = { appId: app.body.id, scriptId: s.body.id, routeId: r.body.id };
});
test.after.always(() => g?.close());

const count = async (table: string) => Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM ${sql.identifier([table])}`));

test("scripts: create → 201 with defaults; show includes the source; the list pages without it", async (t) => {
  const api = g.api(T.editor.token);
  const made = await api.post(`${V1}/apps/${T.appId}/scripts`, { name: "listed-a", source: OK, timeout_ms: 300000, memory_mb: 1024 });
  t.is(made.status, 201);
  t.like(made.body, { name: "listed-a", app_id: T.appId, version: 1, timeout_ms: 300000, memory_mb: 1024, source: OK });
  const dflt = await api.post(`${V1}/apps/shop/scripts`, { name: "listed-b", source: OK });
  t.like(dflt.body, { timeout_ms: 5000, memory_mb: 32 });
  t.is((await api.get(`${V1}/scripts/${made.body.id}`)).body.source, OK);
  const names: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await g.api(T.viewer.token).get(`${V1}/apps/shop/scripts?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    for (const s of r.body.items) {
      t.false("source" in s);
      names.push(s.name);
    }
    cursor = r.body.cursor;
  } while (cursor);
  t.true(names.includes("listed-a") && names.includes("listed-b"));
  t.deepEqual(names, [...names].sort());
});

test.serial("scripts: a source that does not compile is 422 with the compiler's message and nothing is written", async (t) => {
  const api = g.api(T.editor.token);
  const before = await count("scripts");
  const r = await api.post(`${V1}/apps/shop/scripts`, { name: "broken", source: "export default function (ctx) {\n  return {;\n}" });
  t.is(r.status, 422);
  t.is(r.body.error, "invalid_script");
  t.regex(r.body.message, /SyntaxError.*line 2/);
  t.is(await count("scripts"), before);
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "stays", source: OK });
  const upd = await api.patch(`${V1}/scripts/${s.body.id}`, { source: "export default (", timeout_ms: 10 });
  t.is(upd.status, 422);
  t.is(upd.body.error, "invalid_script");
  t.like((await api.get(`${V1}/scripts/${s.body.id}`)).body, { version: 1, source: OK, timeout_ms: 5000 });
});

test("scripts: fields are validated by name; updates bump the version; duplicates 409; delete", async (t) => {
  const api = g.api(T.editor.token);
  for (const [input, field] of [
    [{ name: "x", source: OK, timeout_ms: 0 }, "timeout_ms"],
    [{ name: "x", source: OK, timeout_ms: 300001 }, "timeout_ms"],
    [{ name: "x", source: OK, timeout_ms: "5" }, "timeout_ms"],
    [{ name: "x", source: OK, timeout_ms: 1.5 }, "timeout_ms"],
    [{ name: "x", source: OK, memory_mb: 0 }, "memory_mb"],
    [{ name: "x", source: OK, memory_mb: 4096 }, "memory_mb"],
    [{ name: "bad name!", source: OK }, "name"],
    [{ source: OK }, "name"],
    [{ name: "x" }, "source"],
    [{ name: "x", source: "" }, "source"],
    [{ name: "x", source: OK, version: 9 }, "version"],
  ] as const) {
    const r = await api.post(`${V1}/apps/shop/scripts`, input);
    t.is(r.status, 400, JSON.stringify(input));
    t.is(r.body.field, field, JSON.stringify(input));
  }
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM scripts WHERE name = 'x'`));

  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "versioned", source: OK });
  const renamed = await api.patch(`${V1}/scripts/${s.body.id}`, { name: "versioned-2" });
  t.like(renamed.body, { name: "versioned-2", version: 1 }, "a rename is not a new version");
  const u = await api.patch(`${V1}/scripts/${s.body.id}`, { source: "export default () => 2", timeout_ms: 1000 });
  t.like(u.body, { version: 2, timeout_ms: 1000, source: "export default () => 2" });
  t.is((await api.patch(`${V1}/scripts/${s.body.id}`, { memory_mb: 64 })).body.version, 3);
  t.is((await api.patch(`${V1}/scripts/${s.body.id}`, { memory_mb: 2048 })).body.field, "memory_mb");
  t.is((await api.patchRaw(`${V1}/scripts/${s.body.id}`, "nope")).body.message, "body: not valid JSON");

  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "versioned-2", source: OK })).status, 409);
  const other = await api.post(`${V1}/apps/shop/scripts`, { name: "other", source: OK });
  const clash = await api.patch(`${V1}/scripts/${other.body.id}`, { name: "versioned-2" });
  t.is(clash.status, 409);
  t.is((await api.get(`${V1}/scripts/${other.body.id}`)).body.name, "other");
  // the same name in another app is fine
  t.is((await g.api(T.outsider.token).post(`${V1}/apps/elsewhere/scripts`, { name: "versioned-2", source: OK })).status, 201);

  t.is((await api.delete(`${V1}/scripts/${s.body.id}`)).status, 204);
  t.is((await api.get(`${V1}/scripts/${s.body.id}`)).status, 404);
  t.is((await api.delete(`${V1}/scripts/${s.body.id}`)).status, 404);
  t.is((await api.get(`${V1}/scripts/not-a-uuid`)).status, 404);
});

test("scripts: role matrix and scopes", async (t) => {
  const as = (who: "viewer" | "editor" | "appAdmin" | "outsider") => g.api(T[who].token);
  for (const who of ["viewer", "editor", "appAdmin"] as const) {
    t.is((await as(who).get(`${V1}/apps/shop/scripts`)).status, 200, who);
    t.is((await as(who).get(`${V1}/scripts/${scriptId}`)).status, 200, who);
  }
  t.is((await g.api(T.owner).get(`${V1}/scripts/${scriptId}`)).status, 200);
  t.is((await as("outsider").get(`${V1}/apps/shop/scripts`)).status, 404);
  const hidden = await as("outsider").get(`${V1}/scripts/${scriptId}`);
  t.is(hidden.status, 404);
  t.is(hidden.body.message, "script not found");
  t.is((await as("outsider").patch(`${V1}/scripts/${scriptId}`, { timeout_ms: 1 })).status, 404);
  t.is((await as("outsider").delete(`${V1}/scripts/${scriptId}`)).status, 404);

  t.is((await as("viewer").post(`${V1}/apps/shop/scripts`, { name: "v", source: OK })).status, 403);
  t.is((await as("viewer").patch(`${V1}/scripts/${scriptId}`, { timeout_ms: 100 })).status, 403);
  t.is((await as("viewer").delete(`${V1}/scripts/${scriptId}`)).status, 403);
  t.is((await as("appAdmin").post(`${V1}/apps/shop/scripts`, { name: "by-app-admin", source: OK })).status, 201);
  t.is((await g.api(T.owner).post(`${V1}/apps/shop/scripts`, { name: "by-owner", source: OK })).status, 201);

  // an editor's read-only token reads but cannot write; and it cannot probe other apps for existence
  const ro = g.api(await scopedToken(g, T.editor.token, ["read"]));
  t.is((await ro.get(`${V1}/scripts/${scriptId}`)).status, 200);
  t.is((await ro.post(`${V1}/apps/shop/scripts`, { name: "ro", source: OK })).status, 403);
  t.is((await ro.patch(`${V1}/scripts/${scriptId}`, { timeout_ms: 100 })).status, 403);
  t.is((await ro.delete(`${V1}/scripts/${foreign.scriptId}`)).status, 403);
  t.is((await ro.delete(`${V1}/scripts/00000000-0000-0000-0000-000000000000`)).status, 403);
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM scripts WHERE name IN ('v', 'ro')`));
  t.is((await g.api(T.editor.token).get(`${V1}/scripts/${scriptId}`)).body.timeout_ms, 5000);
});

test("routes: create, list, show, delete; the wildcard host is shown as written", async (t) => {
  const api = g.api(T.editor.token);
  const r = await api.post(`${V1}/scripts/${scriptId}/routes`, {
    host_kind: "wildcard",
    host: "*.Shop.Example",
    path_kind: "pattern",
    path: "/items/:id/",
    methods: ["get", "post", "get"],
    dispatch_mode: "async",
  });
  t.is(r.status, 201);
  t.like(r.body, { host_kind: "wildcard", host: "*.shop.example", path_kind: "pattern", path: "/items/:id", methods: ["GET", "POST"], dispatch_mode: "async", script_id: scriptId, app_id: T.appId });
  t.truthy(r.body.id);
  t.like((await g.api(T.viewer.token).get(`${V1}/routes/${r.body.id}`)).body, { id: r.body.id, host: "*.shop.example" });
  const dflt = await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/plain" });
  t.like(dflt.body, { host_kind: "any", host: null, path_kind: "exact", methods: null, dispatch_mode: "sync" });

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await g.api(T.viewer.token).get(`${V1}/scripts/${scriptId}/routes?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
    seen.push(...page.body.items.map((x: { id: string }) => x.id));
    cursor = page.body.cursor;
  } while (cursor);
  t.true(seen.includes(r.body.id) && seen.includes(dflt.body.id));
  t.is(new Set(seen).size, seen.length);

  t.is((await g.api(T.viewer.token).delete(`${V1}/routes/${r.body.id}`)).status, 403);
  t.is((await api.delete(`${V1}/routes/${r.body.id}`)).status, 204);
  t.is((await api.get(`${V1}/routes/${r.body.id}`)).status, 404);
  t.is((await api.delete(`${V1}/routes/${r.body.id}`)).status, 404);
  t.is((await api.delete(`${V1}/routes/${dflt.body.id}`)).status, 204);
});

test.serial("routes: every bad field is 400 naming it, and nothing is written", async (t) => {
  const api = g.api(T.editor.token);
  const before = await count("routes");
  for (const [input, field] of [
    [{}, "path"],
    [{ path: "no-slash" }, "path"],
    [{ path: "/a/../b" }, "path"],
    [{ path: "/x/:id" }, "path"],
    [{ path_kind: "prefix", path: "/x/:id" }, "path"],
    [{ path_kind: "pattern", path: "/x" }, "path"],
    [{ path_kind: "pattern", path: "/x/:1d" }, "path"],
    [{ path_kind: "pattern", path: "/x/:id/:id" }, "path"],
    [{ path_kind: "regex", path: "/x" }, "path_kind"],
    [{ host_kind: "exact", path: "/x" }, "host"],
    [{ host_kind: "any", host: "a.com", path: "/x" }, "host"],
    [{ host_kind: "wildcard", host: "shop.example", path: "/x" }, "host"],
    [{ host_kind: "exact", host: "bad host!", path: "/x" }, "host"],
    [{ host_kind: "everywhere", path: "/x" }, "host_kind"],
    [{ path: "/x", methods: ["FETCH"] }, "methods.0"],
    [{ path: "/x", methods: [] }, "methods"],
    [{ path: "/x", dispatch_mode: "later" }, "dispatch_mode"],
    [{ path: "/x", colour: "red" }, "colour"],
  ] as const) {
    const r = await api.post(`${V1}/scripts/${scriptId}/routes`, input);
    t.is(r.status, 400, JSON.stringify(input));
    t.is(r.body.field, field, JSON.stringify(input));
  }
  t.is((await api.postRaw(`${V1}/scripts/${scriptId}/routes`, "{")).body.message, "body: not valid JSON");
  t.is(await count("routes"), before);
});

test.serial("routes: a route that would match the same requests as another (any app) is 409 naming it", async (t) => {
  const api = g.api(T.editor.token);
  const post = (body: object, who = api) => who.post(`${V1}/scripts/${scriptId}/routes`, body);
  const first = await post({ path_kind: "pattern", path: "/users/:id", methods: ["GET", "POST"] });
  t.is(first.status, 201);
  const before = await count("routes");
  for (const body of [
    { path_kind: "pattern", path: "/users/:userId", methods: ["POST"] }, // same shape, other name
    { path_kind: "pattern", path: "/users/:id/" }, // all methods overlap
    { path_kind: "pattern", path: "//users/:x", methods: ["HEAD"] }, // HEAD is answered by GET
  ]) {
    const clash = await post(body);
    t.is(clash.status, 409, JSON.stringify(body));
    t.is(clash.body.error, "conflict");
    t.true(clash.body.message.includes(first.body.id));
  }
  // another app's script cannot take it either (the gateway matches globally)
  const theirs = await g.api(T.outsider.token).post(`${V1}/scripts/${foreign.scriptId}/routes`, { path_kind: "pattern", path: "/users/:x" });
  t.is(theirs.status, 409);
  t.true(theirs.body.message.includes(first.body.id));
  t.is(await count("routes"), before);

  // exact vs exact, prefix vs prefix, host keys
  t.is((await post({ path: "/exact-one" })).status, 201);
  t.is((await post({ path: "/exact-one/", methods: ["DELETE"] })).status, 409);
  t.is((await post({ path_kind: "prefix", path: "/pre" })).status, 201);
  t.is((await post({ path_kind: "prefix", path: "/pre/" })).status, 409);
  t.is((await post({ host_kind: "exact", host: "Elsewhere.Test", path: "/theirs" })).status, 409);
  t.is((await post({ host_kind: "wildcard", host: "*.w.test", path: "/w" })).status, 201);
  t.is((await post({ host_kind: "wildcard", host: "*.W.test", path: "/w", methods: ["PUT"] })).status, 409);
});

test("routes: different specificity, methods or hosts are not conflicts", async (t) => {
  const api = g.api(T.editor.token);
  const post = (body: object) => api.post(`${V1}/scripts/${scriptId}/routes`, body);
  t.is((await post({ path_kind: "pattern", path: "/nc/:id", methods: ["GET"] })).status, 201);
  for (const body of [
    { path_kind: "pattern", path: "/nc/:id", methods: ["DELETE"] }, // disjoint methods
    { path_kind: "exact", path: "/nc/me" }, // exact beats the pattern
    { path_kind: "pattern", path: "/nc/:id/:more" }, // another shape
    { path_kind: "pattern", path: "/nc/x/:id" }, // more literal
    { path_kind: "prefix", path: "/nc" }, // prefix below the pattern
    { path_kind: "prefix", path: "/nc/deeper" }, // longer prefix
    { path_kind: "exact", path: "/nc" }, // exact beats the prefix of the same path
    { host_kind: "exact", host: "api.example.com", path_kind: "pattern", path: "/nc/:id" }, // another host key
    { host_kind: "wildcard", host: "*.example.com", path_kind: "pattern", path: "/nc/:id" },
    { host_kind: "wildcard", host: "*.eu.example.com", path_kind: "pattern", path: "/nc/:id" },
  ]) t.is((await post(body)).status, 201, JSON.stringify(body));
});

test("routes: concurrent identical creations: exactly one wins", async (t) => {
  const api = g.api(T.editor.token);
  const race = await Promise.all(Array.from({ length: 6 }, (_, i) => api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/race", methods: i % 2 ? ["GET"] : null })));
  t.deepEqual(race.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409]);
  t.is(Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM routes WHERE path = '/race'`)), 1);
});

test("routes: PATCH changes a definition with the same conflict check (itself excepted)", async (t) => {
  const api = g.api(T.editor.token);
  const a = await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/patch-a", methods: ["GET"] });
  const b = await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/patch-b" });
  const same = await api.patch(`${V1}/routes/${a.body.id}`, { path: "/patch-a/" });
  t.is(same.status, 200, "not a conflict with itself");
  const more = await api.patch(`${V1}/routes/${a.body.id}`, { methods: ["GET", "POST"], dispatch_mode: "async" });
  t.like(more.body, { id: a.body.id, path: "/patch-a", methods: ["GET", "POST"], dispatch_mode: "async" });
  const clash = await api.patch(`${V1}/routes/${a.body.id}`, { path: "/patch-b" });
  t.is(clash.status, 409);
  t.true(clash.body.message.includes(b.body.id));
  t.is((await api.get(`${V1}/routes/${a.body.id}`)).body.path, "/patch-a");
  // changing host_kind drops the old host unless a new one is given
  const hosted = await api.patch(`${V1}/routes/${a.body.id}`, { host_kind: "exact", host: "patch.example" });
  t.like(hosted.body, { host_kind: "exact", host: "patch.example" });
  t.like((await api.patch(`${V1}/routes/${a.body.id}`, { host_kind: "any" })).body, { host_kind: "any", host: null });
  t.is((await api.patch(`${V1}/routes/${a.body.id}`, { host_kind: "wildcard" })).body.field, "host");
  t.is((await api.patch(`${V1}/routes/${a.body.id}`, { script_id: foreign.scriptId })).body.field, "script_id");
  t.is((await api.patchRaw(`${V1}/routes/${a.body.id}`, "[]")).body.field, "body");
  t.is((await g.api(T.viewer.token).patch(`${V1}/routes/${a.body.id}`, { path: "/v" })).status, 403);
  t.is((await g.api(T.outsider.token).patch(`${V1}/routes/${a.body.id}`, { path: "/o" })).status, 404);
  t.like((await api.get(`${V1}/routes/${a.body.id}`)).body, { path: "/patch-a", host_kind: "any" });
});

test("routes: role matrix; another app's script or route is 404", async (t) => {
  const as = (who: "viewer" | "editor" | "appAdmin" | "outsider") => g.api(T[who].token);
  t.is((await as("viewer").post(`${V1}/scripts/${scriptId}/routes`, { path: "/v" })).status, 403);
  t.is((await as("appAdmin").post(`${V1}/scripts/${scriptId}/routes`, { path: "/by-app-admin" })).status, 201);
  t.is((await as("viewer").get(`${V1}/scripts/${scriptId}/routes`)).status, 200);
  t.is((await as("outsider").get(`${V1}/scripts/${scriptId}/routes`)).status, 404);
  t.is((await as("outsider").post(`${V1}/scripts/${scriptId}/routes`, { path: "/o" })).status, 404);
  for (const who of ["viewer", "editor", "appAdmin"] as const) {
    t.is((await as(who).get(`${V1}/routes/${foreign.routeId}`)).status, 404, who);
    t.is((await as(who).delete(`${V1}/routes/${foreign.routeId}`)).status, 404, who);
    t.is((await as(who).get(`${V1}/scripts/${foreign.scriptId}/routes`)).status, 404, who);
    t.is((await as(who).post(`${V1}/scripts/${foreign.scriptId}/routes`, { path: "/mine-now" })).status, 404, who);
  }
  t.is((await g.api(T.owner).get(`${V1}/routes/${foreign.routeId}`)).status, 200);
  t.true(await g.db.exists(sql.unsafe`SELECT 1 FROM routes WHERE id = ${foreign.routeId}`));
});

test("routes: deleting a script removes its routes; the route table follows", async (t) => {
  const api = g.api(T.editor.token);
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "table-check", source: OK, timeout_ms: 1234 });
  const r = await api.post(`${V1}/scripts/${s.body.id}/routes`, { host_kind: "exact", host: "table.test", path_kind: "pattern", path: "/t/:id", methods: ["GET"] });
  let hit = matchRoute(await loadRouteTable(g.db), { host: "table.test", method: "GET", path: "/t/42" });
  t.like(hit?.route, { id: r.body.id, script_id: s.body.id, script_name: "table-check", app_id: T.appId, app_slug: "shop", timeout_ms: 1234, memory_mb: 32, version: 1, dispatch_mode: "sync", source: OK });
  t.deepEqual(hit?.params, { id: "42" });
  t.is((await api.delete(`${V1}/scripts/${s.body.id}`)).status, 204);
  t.is((await api.get(`${V1}/routes/${r.body.id}`)).status, 404);
  hit = matchRoute(await loadRouteTable(g.db), { host: "table.test", method: "GET", path: "/t/42" });
  t.not(hit?.route.id, r.body.id);
});
