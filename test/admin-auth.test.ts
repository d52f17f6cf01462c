// Bootstrap, login, tokens and their scopes, users, body limits.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { scopedToken, startGateway, userToken, type Gateway } from "./helpers/http.ts";

let g: Gateway;
test.before(async () => {
  g = await startGateway({ PICLOUD_MAX_BODY_BYTES: "4096" });
});
test.after.always(() => g?.close());

const V1 = "/api/v1/admin";
const count = async (table: string) => Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM ${sql.identifier([table])}`));

async function ownerToken(): Promise<string> {
  const email = (await g.db.oneFirst(sql.unsafe`SELECT email FROM users WHERE is_owner`)) as string;
  return (await g.api().post(`${V1}/login`, { email, password: "owner-password" })).body.token;
}

test.serial("bootstrap: bad fields are 400 naming the field and create nothing", async (t) => {
  const api = g.api();
  let r = await api.post(`${V1}/bootstrap`, { email: "not-an-email", password: "long enough" });
  t.is(r.status, 400);
  t.is(r.body.error, "invalid_request");
  t.is(r.body.field, "email");
  r = await api.post(`${V1}/bootstrap`, { email: "a@b.co", password: "short" });
  t.is(r.status, 400);
  t.is(r.body.field, "password");
  t.regex(r.body.message, /^password: must be at least 8 characters/);
  r = await api.post(`${V1}/bootstrap`, { email: "a@b.co" });
  t.is(r.body.field, "password");
  t.is(r.body.message, "password: is required");
  r = await api.postRaw(`${V1}/bootstrap`, "{not json");
  t.is(r.status, 400);
  t.is(r.body.message, "body: not valid JSON");
  r = await api.postRaw(`${V1}/bootstrap`, "[1,2]");
  t.is(r.status, 400);
  t.is(r.body.field, "body");
  t.is(await count("users"), 0);
  t.is(await count("api_tokens"), 0);
});

test.serial("bootstrap: concurrent attempts create exactly one owner; later ones are 409", async (t) => {
  const results = await Promise.all(
    Array.from({ length: 5 }, (_, i) => g.api().post(`${V1}/bootstrap`, { email: `Owner${i}@Example.com`, password: "owner-password" })),
  );
  t.deepEqual(results.map((r) => r.status).sort(), [201, 409, 409, 409, 409]);
  const winner = results.find((r) => r.status === 201)!;
  t.regex(winner.body.token, /^pc_/);
  t.like(winner.body.user, { is_owner: true });
  t.regex(winner.body.user.email, /^owner\d@example\.com$/);
  t.false("password_hash" in winner.body.user);
  t.is(await count("users"), 1);
  t.is(await count("api_tokens"), 1);
  // the bootstrap token is a working full-scope token
  t.is((await g.api(winner.body.token).get(`${V1}/users`)).status, 200);
  const again = await g.api().post(`${V1}/bootstrap`, { email: "late@example.com", password: "owner-password" });
  t.is(again.status, 409);
  t.is(again.body.error, "conflict");
  t.is(await count("users"), 1);
});

test.serial("passwords are stored as scrypt hashes with their parameters and a random salt", async (t) => {
  const owner = await ownerToken();
  await userToken(g, owner, "same1@example.com", "same-password");
  await userToken(g, owner, "same2@example.com", "same-password");
  const hashes = (await g.db.anyFirst(sql.unsafe`SELECT password_hash FROM users WHERE email LIKE 'same%'`)) as string[];
  for (const h of hashes) t.regex(h, /^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/);
  t.not(hashes[0], hashes[1]);
  t.false(hashes.some((h) => h.includes("same-password")));
});

test.serial("login: right password gives a token; wrong password or unknown email is 401 with one message", async (t) => {
  const owner = (await g.db.oneFirst(sql.unsafe`SELECT email FROM users WHERE is_owner`)) as string;
  const ok = await g.api().post(`${V1}/login`, { email: owner.toUpperCase(), password: "owner-password" });
  t.is(ok.status, 200);
  t.regex(ok.body.token, /^pc_/);
  t.is(ok.body.user.email, owner);
  t.truthy(ok.body.expires_at);
  t.is((await g.api(ok.body.token).get(`${V1}/apps`)).status, 200);
  const wrong = await g.api().post(`${V1}/login`, { email: owner, password: "wrong-password" });
  t.is(wrong.status, 401);
  t.is(wrong.body.error, "unauthorized");
  const short = await g.api().post(`${V1}/login`, { email: owner, password: "x" });
  t.is(short.status, 401);
  const unknown = await g.api().post(`${V1}/login`, { email: "nobody@example.com", password: "wrong-password" });
  t.is(unknown.status, 401);
  t.is(wrong.body.message, unknown.body.message);
  t.is((await g.api().post(`${V1}/login`, { email: owner })).body.field, "password");
  // only a hash of the secret is stored
  const stored = await g.db.anyFirst(sql.unsafe`SELECT encode(token_hash, 'hex') FROM api_tokens`);
  t.false(stored.some((h) => String(h).includes(ok.body.token)));
});

test.serial("requests without a valid token are 401", async (t) => {
  const owner = await ownerToken();
  t.is((await g.api().get(`${V1}/apps`)).status, 401);
  t.is((await g.api("pc_made_up").get(`${V1}/apps`)).status, 401);
  t.is((await g.api().get(`${V1}/executions/x`)).status, 401);
  t.is((await g.api().post("/api/v1/execute/x")).status, 401);
  const basic = await fetch(`${g.url}${V1}/apps`, { headers: { authorization: `Basic ${owner}` } });
  t.is(basic.status, 401);
  t.is(((await basic.json()) as { error: string }).error, "unauthorized");
});

test.serial("tokens: created with scopes, listed without secrets, paged, revoked", async (t) => {
  const owner = await ownerToken();
  const api = g.api(owner);
  t.is((await api.post(`${V1}/tokens`, { name: "x", scopes: ["everything"] })).body.field, "scopes.0");
  t.is((await api.post(`${V1}/tokens`, { name: "x" })).body.field, "scopes");
  t.is((await api.post(`${V1}/tokens`, { name: "x", scopes: [] })).body.field, "scopes");
  t.is((await api.post(`${V1}/tokens`, { name: " ", scopes: ["read"] })).body.field, "name");
  t.is((await api.post(`${V1}/tokens`, { name: "x", scopes: ["read"], expires_in_days: 0 })).body.field, "expires_in_days");
  t.is((await api.post(`${V1}/tokens`, { name: "x", scopes: ["read"], expires_in_days: 1.5 })).body.field, "expires_in_days");
  t.is((await api.post(`${V1}/tokens`, { name: "x", scopes: ["read"], colour: "red" })).body.field, "colour");
  const mine = async () => Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.is_owner`));
  const before = await mine();

  const made = await api.post(`${V1}/tokens`, { name: "ci", scopes: ["read", "execute", "read"], expires_in_days: 7 });
  t.is(made.status, 201);
  t.like(made.body, { name: "ci", scopes: ["read", "execute"], last_used_at: null });
  t.regex(made.body.token, /^pc_/);
  t.truthy(made.body.id);
  t.true(Date.parse(made.body.expires_at) > Date.now() + 6 * 86400_000);
  t.is(await mine(), before + 1);

  const page1 = await api.get(`${V1}/tokens?limit=1`);
  t.is(page1.body.items.length, 1);
  t.is(page1.body.items[0].id, made.body.id, "newest first");
  t.truthy(page1.body.cursor);
  const all: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await api.get(`${V1}/tokens?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    all.push(...r.body.items.map((i: { id: string }) => i.id));
    t.false(JSON.stringify(r.body).includes("pc_"), "never the secret");
    cursor = r.body.cursor;
  } while (cursor);
  t.is(all.length, before + 1);
  t.is(new Set(all).size, all.length);

  // last_used_at is recorded on use
  await g.api(made.body.token).get(`${V1}/apps`);
  const listed = (await api.get(`${V1}/tokens?limit=200`)).body.items.find((i: { id: string }) => i.id === made.body.id);
  t.truthy(listed.last_used_at);

  t.is((await api.delete(`${V1}/tokens/${made.body.id}`)).status, 204);
  t.is((await g.api(made.body.token).get(`${V1}/apps`)).status, 401);
  t.is((await api.delete(`${V1}/tokens/${made.body.id}`)).status, 404);
  t.is((await api.delete(`${V1}/tokens/not-an-id`)).status, 404);
});

test.serial("tokens: scopes narrow a token; they never widen its user's rights", async (t) => {
  const owner = await ownerToken();
  const reader = g.api(await scopedToken(g, owner, ["read"]));
  t.is((await reader.get(`${V1}/apps`)).status, 200);
  const denied = await reader.post(`${V1}/apps`, { slug: "nope", name: "Nope" });
  t.is(denied.status, 403);
  t.is(denied.body.error, "forbidden");
  t.regex(denied.body.message, /write scope/);
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM apps WHERE slug = 'nope'`));
  // a narrow token cannot mint a wider one, list tokens, or manage users
  t.is((await reader.post(`${V1}/tokens`, { name: "escalate", scopes: ["admin"] })).status, 403);
  t.is((await reader.get(`${V1}/tokens`)).status, 403);
  t.is((await reader.get(`${V1}/users`)).status, 403);

  const writer = g.api(await scopedToken(g, owner, ["write"]));
  t.is((await writer.post(`${V1}/apps`, { slug: "by-writer", name: "W" })).status, 201);
  t.is((await writer.get(`${V1}/apps`)).status, 403, "write does not imply read");

  const executor = g.api(await scopedToken(g, owner, ["execute"]));
  t.is((await executor.get(`${V1}/apps`)).status, 403);

  // a plain user's full-scope token is still only a user
  const alice = await userToken(g, owner, "alice-scope@example.com");
  const aliceAdmin = g.api(await scopedToken(g, alice.token, ["admin"]));
  t.is((await aliceAdmin.post(`${V1}/users`, { email: "mallory@example.com", password: "mallory-password" })).status, 403);
  t.is((await aliceAdmin.get(`${V1}/apps/by-writer`)).status, 404);
});

test.serial("tokens: each user sees and revokes only their own; expired tokens are 401", async (t) => {
  const owner = await ownerToken();
  const bob = await userToken(g, owner, "bob-tokens@example.com");
  const bobs = await g.api(bob.token).post(`${V1}/tokens`, { name: "bob's", scopes: ["read"] });
  const ownerList = await g.api(owner).get(`${V1}/tokens?limit=200`);
  t.false(ownerList.body.items.some((i: { id: string }) => i.id === bobs.body.id));
  t.is((await g.api(owner).delete(`${V1}/tokens/${bobs.body.id}`)).status, 404);
  t.is((await g.api(bobs.body.token).get(`${V1}/apps`)).status, 200);

  const exp = await g.api(owner).post(`${V1}/tokens`, { name: "short-lived", scopes: ["read"], expires_in_days: 1 });
  t.is((await g.api(exp.body.token).get(`${V1}/apps`)).status, 200);
  await g.db.query(sql.unsafe`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = ${exp.body.id}`);
  const expired = await g.api(exp.body.token).get(`${V1}/apps`);
  t.is(expired.status, 401);
  t.is(expired.body.error, "unauthorized");
});

test.serial("users: only the owner creates and lists them; bad fields 400; duplicates 409", async (t) => {
  const owner = await ownerToken();
  const created = await g.api(owner).post(`${V1}/users`, { email: "Carol@Example.com", password: "carol-password" });
  t.is(created.status, 201);
  t.like(created.body, { email: "carol@example.com", is_owner: false });
  t.truthy(created.body.id);
  t.false("password_hash" in created.body);
  t.is((await g.api().post(`${V1}/login`, { email: "carol@example.com", password: "carol-password" })).status, 200);

  t.is((await g.api(owner).post(`${V1}/users`, { email: "carol@example.com", password: "another-one" })).status, 409);
  t.is((await g.api(owner).post(`${V1}/users`, { email: "dave@example.com", password: "short" })).body.field, "password");
  t.is((await g.api(owner).post(`${V1}/users`, { email: "dave", password: "long-enough" })).body.field, "email");
  t.false(await g.db.exists(sql.unsafe`SELECT 1 FROM users WHERE email LIKE 'dave%'`));

  const carol = (await g.api().post(`${V1}/login`, { email: "carol@example.com", password: "carol-password" })).body.token;
  t.is((await g.api(carol).post(`${V1}/users`, { email: "erin@example.com", password: "erin-password" })).status, 403);
  t.is((await g.api(carol).get(`${V1}/users`)).status, 403);

  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await g.api(owner).get(`${V1}/users?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    seen.push(...r.body.items.map((u: { email: string }) => u.email));
    t.false(JSON.stringify(r.body).includes("scrypt"));
    cursor = r.body.cursor;
  } while (cursor);
  t.is(seen.length, await count("users"));
  t.deepEqual(seen, [...seen].sort());
  t.is((await g.api(owner).get(`${V1}/users?limit=201`)).body.field, "limit");
  t.is((await g.api(owner).get(`${V1}/users?limit=abc`)).body.field, "limit");
});

test.serial("a body over PICLOUD_MAX_BODY_BYTES is 413 and changes nothing", async (t) => {
  const before = await count("users");
  const r = await g.api().post(`${V1}/bootstrap`, { email: "big@example.com", password: "x".repeat(5000) });
  t.is(r.status, 413);
  t.is(r.body.error, "payload_too_large");
  t.is(await count("users"), before);
  const owner = await ownerToken();
  const apps = await count("apps");
  const big = await g.api(owner).post(`${V1}/apps`, { slug: "big", name: "n".repeat(5000) });
  t.is(big.status, 413);
  t.is(await count("apps"), apps);
});

test("an unknown admin endpoint is 404 (after authentication)", async (t) => {
  t.is((await g.api().get(`${V1}/nothing-here`)).status, 401);
  const owner = await ownerToken();
  const r = await g.api(owner).get(`${V1}/nothing-here`);
  t.is(r.status, 404);
  t.is(r.body.error, "not_found");
});

test("probes: /healthz is up; /readyz checks the database and migrations", async (t) => {
  t.is((await g.api().get("/healthz")).status, 200);
  const ready = await g.api().get("/readyz");
  t.is(ready.status, 200);
  t.is(ready.body.status, "ready");
});
