import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { bootstrap, startGateway, userToken, type Gateway } from "./helpers/http.ts";

let g: Gateway;
let owner: string;
const users: Record<"viewer" | "editor" | "appAdmin" | "outsider", { id: string; token: string }> = {} as never;
let appId: string;
let scriptId: string;
const V1 = "/api/v1/admin";

test.before(async () => {
  g = await startGateway();
  owner = await bootstrap(g);
  users.viewer = await userToken(g, owner, "viewer@example.com");
  users.editor = await userToken(g, owner, "editor@example.com");
  users.appAdmin = await userToken(g, owner, "appadmin@example.com");
  users.outsider = await userToken(g, owner, "outsider@example.com");
  const app = await g.api(users.appAdmin.token).post(`${V1}/apps`, { slug: "shop", name: "Shop" });
  appId = app.body.id;
  for (const [who, role] of [["viewer", "viewer"], ["editor", "editor"]] as const) {
    const r = await g.api(users.appAdmin.token).put(`${V1}/apps/shop/members/${users[who].id}`, { role });
    if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  }
  const s = await g.api(users.editor.token).post(`${V1}/apps/shop/scripts`, { name: "hello", source: "export default (ctx) => ({ hi: ctx.request.params })" });
  scriptId = s.body.id;
});
test.after.always(() => g?.close());

test("apps: create → 201 with id; slug rules; duplicate slug 409; lookup by id or slug", async (t) => {
  const api = g.api(users.editor.token);
  const r = await api.post(`${V1}/apps`, { slug: "blog", name: "Blog" });
  t.is(r.status, 201);
  t.truthy(r.body.id);
  t.is((await api.get(`${V1}/apps/blog`)).body.id, r.body.id);
  t.is((await api.get(`${V1}/apps/${r.body.id}`)).body.slug, "blog");
  const bad = await api.post(`${V1}/apps`, { slug: "Bad Slug!", name: "x" });
  t.is(bad.status, 400);
  t.is(bad.body.field, "slug");
  t.is((await api.post(`${V1}/apps`, { name: "no slug" })).body.field, "slug");
  t.is((await api.post(`${V1}/apps`, { slug: "blog", name: "Again" })).status, 409);
});

test("apps: each caller lists only the apps they belong to; the owner sees all", async (t) => {
  const slugs = async (token: string) => (await g.api(token).get(`${V1}/apps?limit=200`)).body.items.map((a: { slug: string }) => a.slug);
  t.true((await slugs(users.viewer.token)).includes("shop"));
  t.false((await slugs(users.outsider.token)).includes("shop"));
  t.true((await slugs(owner)).includes("shop"));
  t.is((await g.api(users.outsider.token).get(`${V1}/apps/shop`)).status, 404);
  t.is((await g.api(owner).get(`${V1}/apps?limit=0`)).status, 400);
  t.is((await g.api(owner).get(`${V1}/apps?cursor=garbage`)).body.field, "cursor");
});

test("apps: pagination walks every app once", async (t) => {
  const api = g.api(users.outsider.token);
  for (let i = 0; i < 5; i++) await api.post(`${V1}/apps`, { slug: `page-${i}`, name: `P${i}` });
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await api.get(`${V1}/apps?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    seen.push(...r.body.items.map((a: { slug: string }) => a.slug));
    cursor = r.body.cursor;
  } while (cursor);
  t.deepEqual(seen.filter((s) => s.startsWith("page-")), ["page-0", "page-1", "page-2", "page-3", "page-4"]);
  t.is(new Set(seen).size, seen.length);
});

test("role matrix: viewer reads, editor writes scripts and routes, app_admin manages members, outsider sees nothing", async (t) => {
  const as = (who: keyof typeof users) => g.api(users[who].token);
  // reads
  for (const who of ["viewer", "editor", "appAdmin"] as const) {
    t.is((await as(who).get(`${V1}/apps/shop/scripts`)).status, 200, who);
    t.is((await as(who).get(`${V1}/scripts/${scriptId}`)).status, 200, who);
  }
  t.is((await as("outsider").get(`${V1}/apps/shop/scripts`)).status, 404);
  t.is((await as("outsider").get(`${V1}/scripts/${scriptId}`)).status, 404);
  t.is((await as("outsider").get(`${V1}/scripts/${scriptId}`)).body.message, "script not found");
  // writes
  t.is((await as("viewer").post(`${V1}/apps/shop/scripts`, { name: "v", source: "export default () => 1" })).status, 403);
  t.is((await as("viewer").patch(`${V1}/scripts/${scriptId}`, { timeout_ms: 100 })).status, 403);
  t.is((await as("viewer").post(`${V1}/scripts/${scriptId}/routes`, { path: "/v" })).status, 403);
  t.is((await as("editor").post(`${V1}/apps/shop/scripts`, { name: "e", source: "export default () => 1" })).status, 201);
  // members
  t.is((await as("editor").put(`${V1}/apps/shop/members/${users.outsider.id}`, { role: "viewer" })).status, 403);
  t.is((await as("viewer").get(`${V1}/apps/shop/members`)).status, 200);
  t.is((await as("appAdmin").put(`${V1}/apps/shop/members/${users.outsider.id}`, { role: "owner" })).body.field, "role");
  t.is((await as("appAdmin").put(`${V1}/apps/shop/members/00000000-0000-0000-0000-000000000000`, { role: "viewer" })).status, 404);
  // app settings
  t.is((await as("editor").patch(`${V1}/apps/shop`, { name: "Renamed" })).status, 403);
  t.is((await as("appAdmin").patch(`${V1}/apps/shop`, { name: "Shop!" })).body.name, "Shop!");
  t.is((await g.api(owner).get(`${V1}/apps/shop/scripts`)).status, 200);
});

test("members: add, change, list, remove", async (t) => {
  const api = g.api(users.appAdmin.token);
  const blog = await api.post(`${V1}/apps`, { slug: "members-app", name: "M" });
  t.is((await api.put(`${V1}/apps/${blog.body.id}/members/${users.outsider.id}`, { role: "viewer" })).body.role, "viewer");
  t.is((await g.api(users.outsider.token).get(`${V1}/apps/members-app`)).body.role, "viewer");
  t.is((await api.put(`${V1}/apps/members-app/members/${users.outsider.id}`, { role: "editor" })).body.role, "editor");
  const list = await api.get(`${V1}/apps/members-app/members`);
  t.deepEqual(list.body.items.map((m: { email: string; role: string }) => [m.email, m.role]), [["appadmin@example.com", "app_admin"], ["outsider@example.com", "editor"]]);
  t.is((await api.delete(`${V1}/apps/members-app/members/${users.outsider.id}`)).status, 204);
  t.is((await g.api(users.outsider.token).get(`${V1}/apps/members-app`)).status, 404);
});

test("scripts: a source that does not compile is 422 with the compiler's message and nothing is written", async (t) => {
  const api = g.api(users.editor.token);
  const r = await api.post(`${V1}/apps/shop/scripts`, { name: "broken", source: "export default function (ctx) {\n  return {;\n}" });
  t.is(r.status, 422);
  t.is(r.body.error, "invalid_script");
  t.regex(r.body.message, /SyntaxError.*line 2/);
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM scripts WHERE name = 'broken'`));
  const upd = await api.patch(`${V1}/scripts/${scriptId}`, { source: "export default (" });
  t.is(upd.status, 422);
  t.is((await api.get(`${V1}/scripts/${scriptId}`)).body.version, 1);
});

test("scripts: fields are validated by name; updates bump the version; duplicates 409; delete", async (t) => {
  const api = g.api(users.editor.token);
  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "x", source: "export default () => 1", timeout_ms: 0 })).body.field, "timeout_ms");
  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "x", source: "export default () => 1", memory_mb: 4096 })).body.field, "memory_mb");
  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "bad name!", source: "export default () => 1" })).body.field, "name");
  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "x" })).body.field, "source");
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "versioned", source: "export default () => 1" });
  t.is(s.status, 201);
  t.is(s.body.timeout_ms, 5000);
  t.is(s.body.memory_mb, 32);
  const u = await api.patch(`${V1}/scripts/${s.body.id}`, { source: "export default () => 2", timeout_ms: 1000 });
  t.is(u.body.version, 2);
  t.is(u.body.timeout_ms, 1000);
  t.is((await api.post(`${V1}/apps/shop/scripts`, { name: "versioned", source: "export default () => 1" })).status, 409);
  t.is((await api.delete(`${V1}/scripts/${s.body.id}`)).status, 204);
  t.is((await api.get(`${V1}/scripts/${s.body.id}`)).status, 404);
  t.is((await api.get(`${V1}/scripts/not-a-uuid`)).status, 404);
});

test("routes: create, list, show, delete; validation names the field", async (t) => {
  const api = g.api(users.editor.token);
  const r = await api.post(`${V1}/scripts/${scriptId}/routes`, { host_kind: "wildcard", host: "*.Shop.Example", path_kind: "pattern", path: "/items/:id", methods: ["get"], dispatch_mode: "async" });
  t.is(r.status, 201);
  t.like(r.body, { host_kind: "wildcard", host: "*.shop.example", path_kind: "pattern", path: "/items/:id", methods: ["GET"], dispatch_mode: "async", script_id: scriptId, app_id: appId });
  t.is((await api.get(`${V1}/routes/${r.body.id}`)).body.id, r.body.id);
  t.true((await api.get(`${V1}/scripts/${scriptId}/routes`)).body.items.some((x: { id: string }) => x.id === r.body.id));
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "no-slash" })).body.field, "path");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { host_kind: "exact", path: "/x" })).body.field, "host");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { host_kind: "wildcard", host: "shop.example", path: "/x" })).body.field, "host");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/x", methods: ["FETCH"] })).body.field, "methods.0");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/x", dispatch_mode: "later" })).body.field, "dispatch_mode");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "pattern", path: "/x" })).body.field, "path");
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/x", colour: "red" })).status, 400);
  t.is((await g.api(users.viewer.token).delete(`${V1}/routes/${r.body.id}`)).status, 403);
  t.is((await g.api(users.outsider.token).get(`${V1}/routes/${r.body.id}`)).status, 404);
  t.is((await api.delete(`${V1}/routes/${r.body.id}`)).status, 204);
  t.is((await api.get(`${V1}/routes/${r.body.id}`)).status, 404);
});

test("routes: one that would match the same requests as another (any app) is 409; different ones are fine", async (t) => {
  const api = g.api(users.editor.token);
  const first = await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "pattern", path: "/users/:id", methods: ["GET", "POST"] });
  t.is(first.status, 201);
  const clash = await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "pattern", path: "/users/:userId", methods: ["POST"] });
  t.is(clash.status, 409);
  t.regex(clash.body.message, new RegExp(first.body.id));
  // another app's script cannot take it either
  const other = await g.api(users.outsider.token).post(`${V1}/apps`, { slug: "other-app", name: "O" });
  const os = await g.api(users.outsider.token).post(`${V1}/apps/${other.body.id}/scripts`, { name: "o", source: "export default () => 1" });
  t.is((await g.api(users.outsider.token).post(`${V1}/scripts/${os.body.id}/routes`, { path_kind: "pattern", path: "/users/:x" })).status, 409);
  // not conflicts: other methods, other path kind, other host, other shape
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "pattern", path: "/users/:id", methods: ["DELETE"] })).status, 201);
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "exact", path: "/users/me" })).status, 201);
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { host_kind: "exact", host: "api.example.com", path_kind: "pattern", path: "/users/:id" })).status, 201);
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "prefix", path: "/users" })).status, 201);
  t.is((await api.post(`${V1}/scripts/${scriptId}/routes`, { path_kind: "prefix", path: "/users/" })).status, 409);
  // concurrent identical creations: exactly one wins
  const race = await Promise.all(Array.from({ length: 4 }, () => api.post(`${V1}/scripts/${scriptId}/routes`, { path: "/race" })));
  t.deepEqual(race.map((r) => r.status).sort(), [201, 409, 409, 409]);
});

test("direct execute runs the script, records the execution, and is role- and scope-checked", async (t) => {
  const api = g.api(users.editor.token);
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "direct", source: "export default (ctx) => { console.log('ran', ctx.request.path); return { status: 201, body: { q: ctx.request.query } }; }" });
  const r = await api.post(`/api/v1/execute/${s.body.id}`, { request: { method: "GET", path: "/d", query: { a: "1" } } });
  t.is(r.status, 200);
  t.is(r.body.status, "succeeded");
  t.is(r.body.response.status, 201);
  t.deepEqual(JSON.parse(r.body.response.body), { q: { a: "1" } });
  t.is(r.body.logs[0].message, "ran /d");
  const shown = await g.api(users.viewer.token).get(`${V1}/executions/${r.body.execution_id}`);
  t.is(shown.status, 200);
  t.like(shown.body, { id: r.body.execution_id, script_id: s.body.id, kind: "direct", status: "succeeded", attempts: 1 });
  t.is(shown.body.logs[0].message, "ran /d");
  t.is((await g.api(users.outsider.token).get(`${V1}/executions/${r.body.execution_id}`)).status, 404);
  t.is((await g.api(users.viewer.token).post(`/api/v1/execute/${s.body.id}`)).status, 403);
  t.is((await g.api(users.outsider.token).post(`/api/v1/execute/${s.body.id}`)).status, 404);
  const fail = await api.post(`/api/v1/execute/${s.body.id.replace(/.$/, "0")}`);
  t.is(fail.status, 404);
  const thrower = await api.post(`${V1}/apps/shop/scripts`, { name: "thrower", source: "export default () => { throw new Error('nope'); }" });
  const e = await api.post(`/api/v1/execute/${thrower.body.id}`);
  t.is(e.body.status, "failed");
  t.like(e.body.error, { code: "script_error", message: "nope" });
  t.is((await api.post(`/api/v1/execute/${thrower.body.id}`, { request: { path: "relative" } })).body.field, "request.path");
});

test("executions: listed newest first per app, filtered, paginated", async (t) => {
  const api = g.api(users.editor.token);
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "counted", source: "export default () => 1" });
  for (let i = 0; i < 3; i++) await api.post(`/api/v1/execute/${s.body.id}`);
  const page1 = await api.get(`${V1}/apps/shop/executions?limit=2&script_id=${s.body.id}`);
  t.is(page1.body.items.length, 2);
  t.truthy(page1.body.cursor);
  const page2 = await api.get(`${V1}/apps/shop/executions?limit=2&script_id=${s.body.id}&cursor=${page1.body.cursor}`);
  t.is(page2.body.items.length, 1);
  t.is(page2.body.cursor, null);
  const ids = [...page1.body.items, ...page2.body.items].map((e: { id: string }) => e.id);
  t.is(new Set(ids).size, 3);
  t.is((await api.get(`${V1}/apps/shop/executions?status=done`)).body.field, "status");
  t.is((await g.api(users.outsider.token).get(`${V1}/apps/shop/executions`)).status, 404);
});
