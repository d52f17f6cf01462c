// Dead letters end to end, with real processes, through the HTTP API: the seed's smoke flow
// (a KV write → 3 failing attempts with backoff → one dead letter → dead-letter trigger →
// replay → a new attempt and a new dead letter → resolve), a failing dead-letter handler, the
// dead_letters SDK and who may use it, and async routes ending in dead letters.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { userToken } from "./helpers/http.ts";
import { startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

let p: Platform;
let owner: string;
let admin: { id: string; token: string };
const V1 = "/api/v1/admin";

test.before(async () => {
  p = await startPlatform({ dispatchers: 2 });
  owner = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
  admin = await userToken({ api: p.api } as never, owner, "admin@example.com");
});
test.after.always(() => p?.close());

/** An app whose app_admin is `admin` (who registers its triggers). */
async function app(slug: string): Promise<string> {
  const r = await p.api(admin.token).post(`${V1}/apps`, { slug, name: slug });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id;
}
async function script(slug: string, name: string, source: string): Promise<string> {
  const s = await p.api(admin.token).post(`${V1}/apps/${slug}/scripts`, { name, source });
  if (s.status !== 201) throw new Error(JSON.stringify(s.body));
  return s.body.id;
}
const count = async (slug: string) => (await p.api(admin.token).get(`${V1}/apps/${slug}/dead-letters/count`)).body.unresolved as number;

test("the smoke flow: KV write → 3 attempts with backoff → one dead letter → its trigger → replay → a new dead letter → resolve", async (t) => {
  const appId = await app("smoke");
  const api = p.api(admin.token);
  const thrower = await script("smoke", "thrower", `export default (ctx) => { if (ctx.event.op === "insert") throw new Error("refusing insert of " + ctx.event.key); return "fine"; }`);
  const handler = await script("smoke", "on-dead-letter", `export default (ctx) => ({ seen: ctx.event })`);
  const kvTrigger = (await api.post(`${V1}/apps/smoke/triggers/kv`, { script_id: thrower, collection_glob: "*", ops: ["insert", "update"] })).body;
  t.deepEqual(kvTrigger.effective_retry, { max_attempts: 3, backoff: "exponential", base_ms: 100, jitter_pct: 20 });
  const dlTrigger = (await api.post(`${V1}/apps/smoke/triggers/dead_letter`, { script_id: handler })).body;

  t.is((await api.put(`${V1}/apps/smoke/kv/orders/keys/o-1`, { value: { total: 42 } })).status, 201);
  await waitUntil(async () => (await count("smoke")) === 1, 15_000);
  const [letter] = (await api.get(`${V1}/apps/smoke/dead-letters`)).body.items;
  t.like(letter, { app_id: appId, kind: "kv", script_id: thrower, trigger_id: kvTrigger.id, attempts: 3, resolution: null, trigger_depth: 0 });
  t.is(letter.last_error.message, "refusing insert of o-1");
  t.deepEqual(letter.payload.event, { type: "kv", op: "insert", collection: "orders", key: "o-1", value: { total: 42 }, old_value: null });
  // backoff: 100 ms then 200 ms (± 20 %) between the attempts
  t.true(Date.parse(letter.last_failed_at) - Date.parse(letter.first_failed_at) >= 80 + 160 - 10);
  const failedRun = (await p.api(admin.token).get(`${V1}/executions/${letter.execution_id}`)).body;
  t.like(failedRun, { status: "failed", attempts: 3, kind: "kv", trigger_id: kvTrigger.id });

  // the dead-letter trigger ran with ctx.event as SPEC section 6, one level deeper in the same lineage
  let handled: any;
  await waitUntil(async () => {
    handled = await p.db.maybeOne(sql.unsafe`SELECT * FROM executions WHERE app_id = ${appId} AND kind = 'dead_letter' AND status = 'succeeded'`);
    return !!handled;
  }, 10_000);
  t.like(handled, { trigger_id: dlTrigger.id, trigger_depth: 1, root_execution_id: letter.root_execution_id });
  t.deepEqual(JSON.parse(handled.response.body).seen, {
    type: "dead_letter",
    dead_letter_id: letter.id,
    original: { execution_id: letter.execution_id, kind: "kv", script_id: thrower, trigger_id: kvTrigger.id, route_id: null, payload: letter.payload, trigger_depth: 0, root_execution_id: letter.root_execution_id },
    attempts: 3,
    last_error: letter.last_error,
    first_failed_at: letter.first_failed_at,
    last_failed_at: letter.last_failed_at,
  });

  // replay: a new attempt (3 of them, the same policy), a new dead letter; the first is replayed
  const replayed = await api.post(`${V1}/apps/smoke/dead-letters/${letter.id}/replay`);
  t.is(replayed.status, 200);
  t.like(replayed.body, { resolution: "replayed", resolved_by: admin.id });
  await waitUntil(async () => (await api.get(`${V1}/apps/smoke/dead-letters`)).body.items.length === 2, 15_000);
  t.is(await count("smoke"), 1);
  const [second] = (await api.get(`${V1}/apps/smoke/dead-letters?resolution=unresolved`)).body.items;
  t.like(second, { kind: "replay", execution_id: replayed.body.replay_execution_id, trigger_id: kvTrigger.id, attempts: 3, trigger_depth: 0, root_execution_id: letter.root_execution_id });
  t.deepEqual(second.payload, letter.payload);
  t.like((await api.get(`${V1}/executions/${replayed.body.replay_execution_id}`)).body, { kind: "replay", status: "failed", attempts: 3, root_execution_id: letter.root_execution_id });
  // resolve: ignored, counted no more
  const resolved = await api.post(`${V1}/apps/smoke/dead-letters/${second.id}/resolve`);
  t.like(resolved.body, { resolution: "ignored", resolved_by: admin.id });
  t.is(await count("smoke"), 0);
  // the dead-letter handler ran for each dead letter
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE app_id = ${appId} AND kind = 'dead_letter'`)) === 2, 10_000);
});

test("a failing dead-letter handler makes no dead letter: after its own retries the original is marked handler_failed", async (t) => {
  const appId = await app("handler-fails");
  const api = p.api(admin.token);
  await api.post(`${V1}/apps/handler-fails/triggers/kv`, { script_id: await script("handler-fails", "t", `export default () => { throw new Error("first") }`), collection_glob: "c", ops: ["insert"], retry: { max_attempts: 1 } });
  await api.post(`${V1}/apps/handler-fails/triggers/dead_letter`, { script_id: await script("handler-fails", "h", `export default () => { throw new Error("handler down") }`), retry: { max_attempts: 2, base_ms: 20 } });
  await api.put(`${V1}/apps/handler-fails/kv/c/keys/k`, { value: 1 });
  let letters: any[] = [];
  await waitUntil(async () => {
    letters = (await api.get(`${V1}/apps/handler-fails/dead-letters`)).body.items;
    return letters[0]?.resolution === "handler_failed";
  }, 15_000);
  t.is(letters.length, 1);
  t.like(letters[0], { kind: "kv", attempts: 1, resolution: "handler_failed", handler_error: { code: "script_error", message: "handler down" } });
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE app_id = ${appId}`)) === 0, 5_000);
  const handlerRun = await p.db.one(sql.unsafe`SELECT status, attempts FROM executions WHERE app_id = ${appId} AND kind = 'dead_letter'`);
  t.like(handlerRun, { status: "failed", attempts: 2 });
  t.is((await api.get(`${V1}/apps/handler-fails/dead-letters`)).body.items.length, 1);
  t.is(await count("handler-fails"), 1, "handler_failed is still unresolved");
});

test("dead_letters SDK: a trigger's execution runs as its registrant (app_admin: allowed; demoted: refused); public HTTP runs as no one", async (t) => {
  const appId = await app("sdk");
  const api = p.api(admin.token);
  // two dead letters to work on
  const fail = await script("sdk", "fail", `export default () => { throw new Error("nope") }`);
  await api.post(`${V1}/apps/sdk/triggers/kv`, { script_id: fail, collection_glob: "bad", ops: ["insert"], retry: { max_attempts: 1 } });
  await api.put(`${V1}/apps/sdk/kv/bad/keys/a`, { value: 1 });
  await api.put(`${V1}/apps/sdk/kv/bad/keys/b`, { value: 2 });
  await waitUntil(async () => (await count("sdk")) === 2, 10_000);
  const [b, a] = (await api.get(`${V1}/apps/sdk/dead-letters`)).body.items;

  // the janitor: on a write to "ops", lists, resolves one, replays the other; answers what it saw
  const janitor = await script(
    "sdk",
    "janitor",
    `export default async (ctx) => {
       try {
         const open = await dead_letters.list({ resolution: "unresolved", limit: 10 });
         const r = await dead_letters.resolve(${JSON.stringify(a.id)});
         const p = await dead_letters.replay(${JSON.stringify(b.id)});
         let again; try { await dead_letters.resolve(${JSON.stringify(a.id)}); } catch (e) { again = e.message; }
         return { open: open.items.map((d) => d.id), resolved: r.resolution, replayed: p.resolution, replay: p.replay_execution_id, again };
       } catch (e) { return { refused: e.message }; }
     }`,
  );
  await api.post(`${V1}/apps/sdk/triggers/kv`, { script_id: janitor, collection_glob: "ops", ops: ["insert", "update"] });
  await api.put(`${V1}/apps/sdk/kv/ops/keys/go`, { value: 1 });
  const answer = async (n: number) => {
    let rows: readonly any[] = [];
    await waitUntil(async () => {
      rows = await p.db.any(sql.unsafe`SELECT response FROM executions WHERE app_id = ${appId} AND script_id = ${janitor} AND status = 'succeeded' ORDER BY finished_at`);
      return rows.length >= n;
    }, 10_000);
    return JSON.parse(rows[n - 1].response.body);
  };
  const first = await answer(1);
  t.deepEqual(first.open.sort(), [a.id, b.id].sort());
  t.is(first.resolved, "ignored");
  t.is(first.replayed, "replayed");
  t.regex(first.again, /^dead_letters\.resolve: cannot resolve dead letter .* it is already ignored$/);
  t.like((await api.get(`${V1}/apps/sdk/dead-letters/${a.id}`)).body, { resolution: "ignored", resolved_by: admin.id });
  // the SDK replay runs one level deeper than the execution that asked (depth 0 → 1), same lineage
  const replayRow = await p.db.maybeOne(sql.unsafe`SELECT trigger_depth, root_execution_id FROM executions WHERE id = ${first.replay}
                                                   UNION ALL SELECT trigger_depth, root_execution_id FROM outbox WHERE id = ${first.replay}`);
  t.like(replayRow, { trigger_depth: 1, root_execution_id: b.root_execution_id });

  // the registrant demoted to editor: the same trigger's executions are refused
  const owner2 = p.api(owner);
  t.is((await owner2.put(`${V1}/apps/sdk/members/${admin.id}`, { role: "editor" })).status, 200);
  await api.put(`${V1}/apps/sdk/kv/ops/keys/go`, { value: 2 });
  t.regex((await answer(2)).refused, /dead_letters\.list: the user this execution runs as is not an app_admin of this app/);
  await owner2.put(`${V1}/apps/sdk/members/${admin.id}`, { role: "app_admin" });

  // a public HTTP route runs as no one
  const pub = await script("sdk", "public", `export default async () => await dead_letters.list()`);
  await api.post(`${V1}/scripts/${pub}/routes`, { path: "/sdk/public" });
  const r = await fetch(`${p.url}/sdk/public`);
  t.is(r.status, 502);
  t.regex((await r.json()).message, /dead_letters\.list: this execution runs as no one/);

  // a direct run runs as its caller: an editor is refused, the app_admin allowed
  const editor = await userToken({ api: p.api } as never, owner, "editor@example.com");
  await owner2.put(`${V1}/apps/sdk/members/${editor.id}`, { role: "editor" });
  const asEditor = await p.api(editor.token).post(`/api/v1/execute/${pub}`);
  t.like(asEditor.body, { status: "failed" });
  t.regex(asEditor.body.error.message, /not an app_admin/);
  const asAdmin = await p.api(admin.token).post(`/api/v1/execute/${pub}`);
  t.is(asAdmin.body.status, "succeeded", JSON.stringify(asAdmin.body));
  t.true(Array.isArray(JSON.parse(asAdmin.body.response.body).items));
  // bad input is the script's error
  const bad = await script("sdk", "bad", `export default async () => { const out = []; for (const f of [() => dead_letters.replay("nope"), () => dead_letters.list({ resolution: "open" }), () => dead_letters.list({ limit: 0 }), () => dead_letters.resolve("00000000-0000-4000-8000-000000000000")]) { try { await f(); } catch (e) { out.push(e.message); } } return out; }`);
  const errs = JSON.parse((await p.api(admin.token).post(`/api/v1/execute/${bad}`)).body.response.body);
  t.regex(errs[0], /dead_letters\.replay: the dead letter id must be a dead letter's id/);
  t.regex(errs[1], /dead_letters\.list: resolution: must be one of/);
  t.regex(errs[2], /dead_letters\.list: limit must be an integer from 1 to 200/);
  t.regex(errs[3], /dead_letters\.resolve: dead letter not found/);
});

test("an async route that fails every attempt ends as a dead letter with its route; replay runs it again", async (t) => {
  await app("async-dl");
  const s = await script("async-dl", "a", `export default (ctx) => { throw new Error("async " + ctx.request.body.n) }`);
  const route = (await p.api(admin.token).post(`${V1}/scripts/${s}/routes`, { path: "/async-dl", dispatch_mode: "async" })).body;
  const accepted = await fetch(`${p.url}/async-dl`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ n: 7 }) });
  t.is(accepted.status, 202);
  const { execution_id } = await accepted.json();
  await waitUntil(async () => (await count("async-dl")) === 1, 15_000);
  const [letter] = (await p.api(admin.token).get(`${V1}/apps/async-dl/dead-letters`)).body.items;
  t.like(letter, { kind: "http_async", execution_id, route_id: route.id, trigger_id: null, attempts: 3, last_error: { message: "async 7" } });
  t.like(letter.payload.request, { method: "POST", path: "/async-dl", body: { n: 7 } });
  const replay = await p.api(admin.token).post(`${V1}/apps/async-dl/dead-letters/${letter.id}/replay`);
  await waitUntil(async () => (await p.api(admin.token).get(`${V1}/executions/${replay.body.replay_execution_id}`)).body.status === "failed", 15_000);
  t.like((await p.api(admin.token).get(`${V1}/executions/${replay.body.replay_execution_id}`)).body, { kind: "replay", route_id: route.id, error: { message: "async 7" } });
});
