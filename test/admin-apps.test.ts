// Apps (by id or slug) and members with roles.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { scopedToken, startGateway, team, userToken, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
const V1 = "/api/v1/admin";

test.before(async () => {
  g = await startGateway();
  T = await team(g);
});
test.after.always(() => g?.close());

test("apps: create → 201 with id, creator is app_admin; slug rules; duplicate slug 409; lookup by id or slug", async (t) => {
  const api = g.api(T.editor.token);
  const r = await api.post(`${V1}/apps`, { slug: "blog", name: "Blog" });
  t.is(r.status, 201);
  t.like(r.body, { slug: "blog", name: "Blog", role: "app_admin" });
  t.truthy(r.body.id);
  t.is((await api.get(`${V1}/apps/blog/members`)).body.items[0].role, "app_admin");
  t.is((await api.get(`${V1}/apps/blog`)).body.id, r.body.id);
  t.is((await api.get(`${V1}/apps/${r.body.id}`)).body.slug, "blog");
  for (const [input, field] of [
    [{ slug: "Bad Slug!", name: "x" }, "slug"],
    [{ slug: "-dash", name: "x" }, "slug"],
    [{ slug: "a".repeat(64), name: "x" }, "slug"],
    [{ slug: "12345678-1234-1234-1234-123456789abc", name: "x" }, "slug"],
    [{ name: "no slug" }, "slug"],
    [{ slug: "ok-slug" }, "name"],
    [{ slug: "ok-slug", name: "  " }, "name"],
    [{ slug: "ok-slug", name: "x", extra: 1 }, "extra"],
  ] as const) {
    const bad = await api.post(`${V1}/apps`, input);
    t.is(bad.status, 400, JSON.stringify(input));
    t.is(bad.body.field, field);
  }
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM apps WHERE slug = 'ok-slug'`));
  const dup = await g.api(T.outsider.token).post(`${V1}/apps`, { slug: "blog", name: "Again" });
  t.is(dup.status, 409);
  t.is(dup.body.error, "conflict");
});

test("apps: each caller lists only the apps they belong to; the owner sees all; limit and cursor are checked", async (t) => {
  const slugs = async (token: string) => (await g.api(token).get(`${V1}/apps?limit=200`)).body.items.map((a: { slug: string }) => a.slug);
  t.true((await slugs(T.viewer.token)).includes("shop"));
  t.false((await slugs(T.outsider.token)).includes("shop"));
  t.true((await slugs(T.owner)).includes("shop"));
  const own = (await g.api(T.owner).get(`${V1}/apps?limit=200`)).body.items.find((a: { slug: string }) => a.slug === "shop");
  t.is(own.role, "owner");
  const mine = (await g.api(T.viewer.token).get(`${V1}/apps?limit=200`)).body.items.find((a: { slug: string }) => a.slug === "shop");
  t.is(mine.role, "viewer");
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/shop`)).status, 404);
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/${T.appId}`)).status, 404);
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/no-such-app`)).status, 404);
  for (const q of ["limit=0", "limit=201", "limit=-1", "limit=1.5", "limit=x"]) t.is((await g.api(T.owner).get(`${V1}/apps?${q}`)).body.field, "limit", q);
  t.is((await g.api(T.owner).get(`${V1}/apps?cursor=garbage`)).body.field, "cursor");
});

test("apps: pagination walks every app once, in slug order, with a null cursor at the end", async (t) => {
  const api = g.api((await userToken(g, T.owner, "pager@example.com")).token);
  for (let i = 0; i < 5; i++) t.is((await api.post(`${V1}/apps`, { slug: `page-${i}`, name: `P${i}` })).status, 201);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r = await api.get(`${V1}/apps?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    t.true(r.body.items.length <= 2);
    seen.push(...r.body.items.map((a: { slug: string }) => a.slug));
    cursor = r.body.cursor;
    pages++;
  } while (cursor);
  t.deepEqual(seen, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
  t.is(pages, 3);
});

test("apps: app_admin and owner rename and re-slug; editor 403; outsider 404; slug taken 409 changes nothing", async (t) => {
  const admin = g.api(T.appAdmin.token);
  const app = await admin.post(`${V1}/apps`, { slug: "rename-me", name: "Before" });
  await admin.put(`${V1}/apps/rename-me/members/${T.editor.id}`, { role: "editor" });
  t.is((await g.api(T.editor.token).patch(`${V1}/apps/rename-me`, { name: "Editor's" })).status, 403);
  t.is((await g.api(T.outsider.token).patch(`${V1}/apps/rename-me`, { name: "Outsider's" })).status, 404);
  t.is((await g.api(await scopedToken(g, T.appAdmin.token, ["read"])).patch(`${V1}/apps/rename-me`, { name: "RO" })).status, 403);
  t.is((await admin.patch(`${V1}/apps/rename-me`, { slug: "Bad!" })).body.field, "slug");
  t.is((await admin.patch(`${V1}/apps/rename-me`, { owner: "me" })).body.field, "owner");
  const taken = await admin.patch(`${V1}/apps/rename-me`, { slug: "shop", name: "Stolen" });
  t.is(taken.status, 409);
  t.like((await admin.get(`${V1}/apps/${app.body.id}`)).body, { slug: "rename-me", name: "Before" });

  const r = await admin.patch(`${V1}/apps/rename-me`, { slug: "renamed", name: "After" });
  t.is(r.status, 200);
  t.like(r.body, { id: app.body.id, slug: "renamed", name: "After", role: "app_admin" });
  t.is((await admin.get(`${V1}/apps/rename-me`)).status, 404);
  // the owner is not a member, yet may do anything
  const byOwner = await g.api(T.owner).patch(`${V1}/apps/${app.body.id}`, { name: "Owner's" });
  t.like(byOwner.body, { name: "Owner's", role: "owner" });
});

test("apps: delete needs app_admin; it takes the app's scripts and routes with it", async (t) => {
  const admin = g.api(T.appAdmin.token);
  const app = await admin.post(`${V1}/apps`, { slug: "doomed", name: "D" });
  await admin.put(`${V1}/apps/doomed/members/${T.editor.id}`, { role: "editor" });
  const s = await g.api(T.editor.token).post(`${V1}/apps/doomed/scripts`, { name: "s", source: "export default () => 1" });
  const route = await g.api(T.editor.token).post(`${V1}/scripts/${s.body.id}/routes`, { path: "/doomed" });
  t.is(route.status, 201);
  t.is((await g.api(T.editor.token).delete(`${V1}/apps/doomed`)).status, 403);
  t.is((await g.api(T.outsider.token).delete(`${V1}/apps/doomed`)).status, 404);
  t.is((await admin.delete(`${V1}/apps/${app.body.id}`)).status, 204);
  t.is((await admin.get(`${V1}/apps/doomed`)).status, 404);
  t.is((await admin.delete(`${V1}/apps/doomed`)).status, 404);
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM scripts WHERE id = ${s.body.id}`));
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM routes WHERE id = ${route.body.id}`));
});

test("members: app_admin adds, changes, lists and removes; the new member gains and loses access", async (t) => {
  const admin = g.api(T.appAdmin.token);
  const app = await admin.post(`${V1}/apps`, { slug: "members-app", name: "M" });
  const added = await admin.put(`${V1}/apps/${app.body.id}/members/${T.outsider.id}`, { role: "viewer" });
  t.is(added.status, 200);
  t.like(added.body, { user_id: T.outsider.id, email: "outsider@example.com", role: "viewer" });
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/members-app`)).body.role, "viewer");
  t.is((await admin.put(`${V1}/apps/members-app/members/${T.outsider.id}`, { role: "editor" })).body.role, "editor");
  const list = await g.api(T.outsider.token).get(`${V1}/apps/members-app/members`);
  t.deepEqual(
    list.body.items.map((m: { email: string; role: string }) => [m.email, m.role]),
    [["appadmin@example.com", "app_admin"], ["outsider@example.com", "editor"]],
  );
  t.is(list.body.cursor, null);
  const p1 = await admin.get(`${V1}/apps/members-app/members?limit=1`);
  t.is(p1.body.items.length, 1);
  const p2 = await admin.get(`${V1}/apps/members-app/members?limit=1&cursor=${p1.body.cursor}`);
  t.is(p2.body.items[0].email, "outsider@example.com");
  t.is(p2.body.cursor, null);

  t.is((await admin.delete(`${V1}/apps/members-app/members/${T.outsider.id}`)).status, 204);
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/members-app`)).status, 404);
  t.is((await admin.delete(`${V1}/apps/members-app/members/${T.outsider.id}`)).status, 404);
});

test("members: validation and the role matrix", async (t) => {
  const as = (who: "viewer" | "editor" | "appAdmin" | "outsider") => g.api(T[who].token);
  const path = `${V1}/apps/shop/members`;
  t.is((await as("appAdmin").put(`${path}/${T.outsider.id}`, { role: "owner" })).body.field, "role");
  t.is((await as("appAdmin").put(`${path}/${T.outsider.id}`, {})).body.field, "role");
  t.is((await as("appAdmin").putRaw(`${path}/${T.outsider.id}`, "{")).body.message, "body: not valid JSON");
  t.is((await as("appAdmin").put(`${path}/00000000-0000-0000-0000-000000000000`, { role: "viewer" })).status, 404);
  t.is((await as("appAdmin").put(`${path}/not-a-user`, { role: "viewer" })).status, 404);
  t.is((await as("appAdmin").delete(`${path}/not-a-user`)).status, 404);
  // reads: any member; outsider: not found
  for (const who of ["viewer", "editor", "appAdmin"] as const) t.is((await as(who).get(path)).status, 200, who);
  t.is((await as("outsider").get(path)).status, 404);
  // writes: app_admin and owner only
  for (const who of ["viewer", "editor"] as const) {
    t.is((await as(who).put(`${path}/${T.outsider.id}`, { role: "viewer" })).status, 403, who);
    t.is((await as(who).delete(`${path}/${T.viewer.id}`)).status, 403, who);
  }
  t.is((await as("outsider").put(`${path}/${T.outsider.id}`, { role: "app_admin" })).status, 404);
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM app_members WHERE user_id = ${T.outsider.id} AND app_id = ${T.appId}`));
  const temp = await userToken(g, T.owner, "temp-member@example.com");
  t.is((await g.api(T.owner).put(`${path}/${temp.id}`, { role: "viewer" })).status, 200);
  t.is((await g.api(T.owner).delete(`${path}/${temp.id}`)).status, 204);
});
