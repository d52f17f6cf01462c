import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { startGateway, userToken, type Gateway } from "./helpers/http.ts";

let g: Gateway;
test.before(async () => {
  g = await startGateway({ PICLOUD_MAX_BODY_BYTES: "4096" });
});
test.after.always(() => g?.close());

const count = async (table: string) => Number((await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM ${sql.identifier([table])}`)) as number);

async function ownerToken(): Promise<string> {
  const email = (await g.db.oneFirst(sql.unsafe`SELECT email FROM users WHERE is_owner`)) as string;
  return (await g.api().post("/api/v1/admin/login", { email, password: "owner-password" })).body.token;
}

test.serial("bootstrap: bad fields are 400 naming the field and create nothing", async (t) => {
  const api = g.api();
  let r = await api.post("/api/v1/admin/bootstrap", { email: "not-an-email", password: "long enough" });
  t.is(r.status, 400);
  t.is(r.body.error, "invalid_request");
  t.is(r.body.field, "email");
  r = await api.post("/api/v1/admin/bootstrap", { email: "a@b.co", password: "short" });
  t.is(r.status, 400);
  t.is(r.body.field, "password");
  r = await api.postRaw("/api/v1/admin/bootstrap", "{not json");
  t.is(r.status, 400);
  t.regex(r.body.message, /body: not valid JSON/);
  t.is(await count("users"), 0);
});

test.serial("bootstrap: concurrent attempts create exactly one owner; later ones are 409", async (t) => {
  const results = await Promise.all(
    Array.from({ length: 5 }, (_, i) => g.api().post("/api/v1/admin/bootstrap", { email: `owner${i}@example.com`, password: "owner-password" })),
  );
  t.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409, 409, 409]);
  const winner = results.find((r) => r.status === 201)!;
  t.truthy(winner.body.token);
  t.true(winner.body.user.is_owner);
  t.is(await count("users"), 1);
  const again = await g.api().post("/api/v1/admin/bootstrap", { email: "late@example.com", password: "owner-password" });
  t.is(again.status, 409);
  t.is(again.body.error, "conflict");
});

test.serial("login: right password gives a token; wrong password or unknown email is 401", async (t) => {
  const owner = (await g.db.oneFirst(sql.unsafe`SELECT email FROM users WHERE is_owner`)) as string;
  const ok = await g.api().post("/api/v1/admin/login", { email: owner.toUpperCase(), password: "owner-password" });
  t.is(ok.status, 200);
  t.regex(ok.body.token, /^pc_/);
  const wrong = await g.api().post("/api/v1/admin/login", { email: owner, password: "wrong-password" });
  t.is(wrong.status, 401);
  const unknown = await g.api().post("/api/v1/admin/login", { email: "nobody@example.com", password: "wrong-password" });
  t.is(unknown.status, 401);
  t.is(wrong.body.message, unknown.body.message);
  // only a hash is stored
  const stored = await g.db.anyFirst(sql.unsafe`SELECT encode(token_hash, 'hex') FROM api_tokens`);
  t.false(stored.some((h) => String(h).includes(ok.body.token)));
});

test.serial("requests without a valid token are 401", async (t) => {
  t.is((await g.api().get("/api/v1/admin/apps")).status, 401);
  t.is((await g.api("pc_made_up").get("/api/v1/admin/apps")).status, 401);
  t.is((await g.api().get("/api/v1/admin/executions/x")).status, 401);
});

test.serial("tokens: scopes limit what a token may do; deleted and expired tokens stop working", async (t) => {
  const owner = await ownerToken();
  const api = g.api(owner);
  const bad = await api.post("/api/v1/admin/tokens", { name: "x", scopes: ["everything"] });
  t.is(bad.status, 400);
  t.is(bad.body.field, "scopes.0");
  const ro = await api.post("/api/v1/admin/tokens", { name: "ci read-only", scopes: ["read"] });
  t.is(ro.status, 201);
  t.deepEqual(ro.body.scopes, ["read"]);
  const reader = g.api(ro.body.token);
  t.is((await reader.get("/api/v1/admin/apps")).status, 200);
  const denied = await reader.post("/api/v1/admin/apps", { slug: "nope", name: "Nope" });
  t.is(denied.status, 403);
  t.regex(denied.body.message, /write scope/);
  t.is((await reader.post("/api/v1/admin/tokens", { name: "escalate", scopes: ["admin"] })).status, 403);
  t.is(await g.db.exists(sql.unsafe`SELECT 1 FROM apps WHERE slug = 'nope'`), false);

  const list = await api.get("/api/v1/admin/tokens");
  t.true(list.body.items.some((i: { id: string }) => i.id === ro.body.id));
  t.false(JSON.stringify(list.body).includes(ro.body.token));
  t.is((await api.delete(`/api/v1/admin/tokens/${ro.body.id}`)).status, 204);
  t.is((await reader.get("/api/v1/admin/apps")).status, 401);
  t.is((await api.delete(`/api/v1/admin/tokens/${ro.body.id}`)).status, 404);

  const exp = await api.post("/api/v1/admin/tokens", { name: "short-lived", scopes: ["read"], expires_in_days: 1 });
  await g.db.query(sql.unsafe`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = ${exp.body.id}`);
  t.is((await g.api(exp.body.token).get("/api/v1/admin/apps")).status, 401);
});

test.serial("users: only the owner creates and lists them; duplicates are 409", async (t) => {
  const owner = await ownerToken();
  const u = await userToken(g, owner, "alice@example.com");
  t.is((await g.api(owner).post("/api/v1/admin/users", { email: "alice@example.com", password: "another-one" })).status, 409);
  t.is((await g.api(u.token).post("/api/v1/admin/users", { email: "bob@example.com", password: "bob-password" })).status, 403);
  t.is((await g.api(u.token).get("/api/v1/admin/users")).status, 403);
  const list = await g.api(owner).get("/api/v1/admin/users");
  t.is(list.status, 200);
  t.true(list.body.items.some((x: { email: string }) => x.email === "alice@example.com"));
  t.false(JSON.stringify(list.body).includes("scrypt"));
});

test.serial("a body over PICLOUD_MAX_BODY_BYTES is 413 and changes nothing", async (t) => {
  const before = await count("users");
  const r = await g.api().post("/api/v1/admin/bootstrap", { email: "big@example.com", password: "x".repeat(5000) });
  t.is(r.status, 413);
  t.is(r.body.error, "payload_too_large");
  t.is(await count("users"), before);
});

test("probes: /healthz is up; /readyz checks the database and migrations", async (t) => {
  t.is((await g.api().get("/healthz")).status, 200);
  const ready = await g.api().get("/readyz");
  t.is(ready.status, 200);
  t.is(ready.body.status, "ready");
});

