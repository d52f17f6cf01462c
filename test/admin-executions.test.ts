// Direct execution (POST /api/v1/execute/{script_id}) and the executions API.
import { randomUUID } from "node:crypto";
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { recordExecution } from "../lib/executions/index.ts";
import { enqueue } from "../lib/outbox/index.ts";
import { scopedToken, startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
let foreign: { appId: string; scriptId: string; executionId: string };
const V1 = "/api/v1/admin";
const EXEC = "/api/v1/execute";

test.before(async () => {
  g = await startGateway();
  T = await team(g);
  const other = g.api(T.outsider.token);
  const app = await other.post(`${V1}/apps`, { slug: "elsewhere", name: "E" });
  const s = await other.post(`${V1}/apps/elsewhere/scripts`, { name: "theirs", source: "export default () => 'theirs'" });
  const run = await other.post(`${EXEC}/${s.body.id}`);
  foreign = { appId: app.body.id, scriptId: s.body.id, executionId: run.body.execution_id };
});
test.after.always(() => g?.close());

const script = async (name: string, source: string) => {
  const r = await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name, source });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return r.body.id as string;
};

test("direct execute runs the script with the given request and records the execution", async (t) => {
  const id = await script(
    "direct",
    "export default (ctx) => { console.log('ran', ctx.request.method, ctx.request.path); return { status: 201, headers: { 'x-a': ctx.app.slug }, body: { q: ctx.request.query, b: ctx.request.body, p: ctx.request.params, s: ctx.script.name, e: ctx.event ?? null } }; }",
  );
  const r = await g.api(T.editor.token).post(`${EXEC}/${id}`, { request: { method: "put", path: "/d", query: { a: "1" }, headers: { "x-h": "v" }, body: { n: 1 }, params: { id: "7" } } });
  t.is(r.status, 200);
  t.is(r.body.status, "succeeded");
  t.is(r.body.response.status, 201);
  t.is(r.body.response.headers["x-a"], "shop");
  t.deepEqual(JSON.parse(r.body.response.body), { q: { a: "1" }, b: { n: 1 }, p: { id: "7" }, s: "direct", e: null });
  t.is(r.body.logs[0].message, "ran PUT /d");
  t.true(typeof r.body.duration_ms === "number");
  t.false("error" in r.body);

  const shown = await g.api(T.viewer.token).get(`${V1}/executions/${r.body.execution_id}`);
  t.is(shown.status, 200);
  t.like(shown.body, { id: r.body.execution_id, app_id: T.appId, script_id: id, kind: "direct", status: "succeeded", attempts: 1, trigger_depth: 0, root_execution_id: r.body.execution_id, error: null });
  t.is(shown.body.response.status, 201);
  t.is(shown.body.logs[0].message, "ran PUT /d");
  for (const k of ["queued_at", "started_at", "finished_at", "duration_ms"]) t.not(shown.body[k], null, k);
  t.true(Date.parse(shown.body.finished_at) >= Date.parse(shown.body.started_at));

  // no body at all is fine: a POST / with nothing; an event becomes ctx.event
  const bare = await g.api(T.editor.token).post(`${EXEC}/${id}`);
  t.is(bare.body.status, "succeeded");
  t.is(bare.body.logs[0].message, "ran POST /");
  const withEvent = await g.api(T.editor.token).post(`${EXEC}/${id}`, { event: { type: "kv", key: "k" } });
  t.deepEqual(JSON.parse(withEvent.body.response.body).e, { type: "kv", key: "k" });
});

test("direct execute: a failing script is a 200 whose status is failed, recorded with its error", async (t) => {
  const thrower = await script("thrower", "export default () => { console.warn('about to'); throw new Error('nope'); }");
  const e = await g.api(T.editor.token).post(`${EXEC}/${thrower}`);
  t.is(e.status, 200);
  t.is(e.body.status, "failed");
  t.like(e.body.error, { code: "script_error", message: "nope" });
  t.false("response" in e.body);
  t.is(e.body.logs[0].level, "warn");
  const shown = await g.api(T.editor.token).get(`${V1}/executions/${e.body.execution_id}`);
  t.like(shown.body, { status: "failed", response: null, error: { code: "script_error", message: "nope" } });
  t.is(shown.body.logs[0].message, "about to");

  const slow = await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "slow", source: "export default () => { for (;;) {} }", timeout_ms: 100 });
  const timedOut = await g.api(T.editor.token).post(`${EXEC}/${slow.body.id}`);
  t.is(timedOut.body.status, "failed");
  t.is(timedOut.body.error.code, "timeout");
});

test("direct execute: body validation, roles and scopes", async (t) => {
  const id = await script("guarded", "export default () => 1");
  const editor = g.api(T.editor.token);
  t.is((await editor.post(`${EXEC}/${id}`, { request: { path: "relative" } })).body.field, "request.path");
  t.is((await editor.post(`${EXEC}/${id}`, { request: { method: "NOT A METHOD" } })).body.field, "request.method");
  t.is((await editor.post(`${EXEC}/${id}`, { request: { query: { a: 1 } } })).body.field, "request.query.a");
  t.is((await editor.post(`${EXEC}/${id}`, { requests: {} })).body.field, "requests");
  t.is((await editor.postRaw(`${EXEC}/${id}`, "{oops")).body.message, "body: not valid JSON");
  const count = () => g.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE script_id = ${id}`);
  t.is(Number(await count()), 0, "a rejected request runs nothing and records nothing");

  t.is((await g.api(T.viewer.token).post(`${EXEC}/${id}`)).status, 403);
  t.is((await g.api(T.appAdmin.token).post(`${EXEC}/${id}`)).status, 200);
  t.is((await g.api(T.owner).post(`${EXEC}/${id}`)).status, 200);
  t.is((await g.api(T.outsider.token).post(`${EXEC}/${id}`)).status, 404);
  t.is((await editor.post(`${EXEC}/${randomUUID()}`)).status, 404);
  t.is((await editor.post(`${EXEC}/not-an-id`)).status, 404);
  t.is((await editor.post(`${EXEC}/${foreign.scriptId}`)).status, 404);

  // the execute scope: needed, and enough
  const readOnly = g.api(await scopedToken(g, T.editor.token, ["read", "write"]));
  const denied = await readOnly.post(`${EXEC}/${id}`);
  t.is(denied.status, 403);
  t.regex(denied.body.message, /execute scope/);
  t.is((await readOnly.post(`${EXEC}/${foreign.scriptId}`)).status, 403, "no existence probe without the scope");
  const runner = g.api(await scopedToken(g, T.editor.token, ["execute"]));
  t.is((await runner.post(`${EXEC}/${id}`)).body.status, "succeeded");
  t.is((await runner.get(`${V1}/scripts/${id}`)).status, 403);
  const viewerRunner = g.api(await scopedToken(g, T.viewer.token, ["execute"]));
  t.is((await viewerRunner.post(`${EXEC}/${id}`)).status, 403, "the scope does not widen the role");
  t.is(Number(await count()), 3);
});

test("executions: shown to members of their app only; another app's is 404", async (t) => {
  for (const who of ["viewer", "editor", "appAdmin"] as const) {
    const r = await g.api(T[who].token).get(`${V1}/executions/${foreign.executionId}`);
    t.is(r.status, 404, who);
    t.is(r.body.message, "execution not found");
  }
  t.is((await g.api(T.outsider.token).get(`${V1}/executions/${foreign.executionId}`)).status, 200);
  t.is((await g.api(T.owner).get(`${V1}/executions/${foreign.executionId}`)).status, 200);
  t.is((await g.api(T.viewer.token).get(`${V1}/executions/${randomUUID()}`)).status, 404);
  t.is((await g.api(T.viewer.token).get(`${V1}/executions/nope`)).status, 404);
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/shop/executions`)).status, 404);
  t.is((await g.api(T.viewer.token).get(`${V1}/apps/elsewhere/executions`)).status, 404);
  t.is((await g.api(await scopedToken(g, T.outsider.token, ["execute"])).get(`${V1}/executions/${foreign.executionId}`)).status, 403);
});

test("executions: one still in the outbox shows as queued", async (t) => {
  const id = await script("queued", "export default () => 1");
  const executionId = randomUUID();
  await enqueue(g.db, [{ id: executionId, kind: "http_async", appId: T.appId, scriptId: id, payload: { request: {} }, rootExecutionId: executionId }]);
  const r = await g.api(T.viewer.token).get(`${V1}/executions/${executionId}`);
  t.is(r.status, 200);
  t.like(r.body, { id: executionId, script_id: id, status: "queued", kind: "http_async", finished_at: null, logs: [] });
  t.is((await g.api(T.outsider.token).get(`${V1}/executions/${executionId}`)).status, 404);
});

test("executions: listed newest first per app, filtered by script and status, paged with an opaque cursor", async (t) => {
  const ok = await script("counted", "export default () => 1");
  const bad = await script("counted-bad", "export default () => { throw new Error('x'); }");
  for (let i = 0; i < 3; i++) await g.api(T.editor.token).post(`${EXEC}/${ok}`);
  await g.api(T.editor.token).post(`${EXEC}/${bad}`);

  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r = await g.api(T.viewer.token).get(`${V1}/apps/shop/executions?limit=2&script_id=${ok}${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    for (const e of r.body.items) {
      t.is(e.script_id, ok);
      t.false("logs" in e);
      ids.push(e.id);
    }
    cursor = r.body.cursor;
    pages++;
  } while (cursor);
  t.is(ids.length, 3);
  t.is(new Set(ids).size, 3);
  t.is(pages, 2);

  const failed = await g.api(T.viewer.token).get(`${V1}/apps/${T.appId}/executions?status=failed&script_id=${bad}`);
  t.is(failed.body.items.length, 1);
  t.is(failed.body.items[0].status, "failed");
  t.is((await g.api(T.viewer.token).get(`${V1}/apps/shop/executions?status=succeeded&script_id=${bad}`)).body.items.length, 0);

  const all = (await g.api(T.viewer.token).get(`${V1}/apps/shop/executions?limit=200`)).body.items;
  const times = all.map((e: { queued_at: string }) => Date.parse(e.queued_at));
  t.deepEqual(times, [...times].sort((a: number, b: number) => b - a));
  t.false(all.some((e: { app_id: string }) => e.app_id !== T.appId));

  for (const [q, field] of [
    ["status=done", "status"],
    ["script_id=nope", "script_id"],
    ["limit=0", "limit"],
    ["limit=500", "limit"],
    ["cursor=abc", "cursor"],
    [`cursor=${Buffer.from('["x","y"]').toString("base64url")}`, "cursor"],
  ]) t.is((await g.api(T.viewer.token).get(`${V1}/apps/shop/executions?${q}`)).body.field, field, q);
});

test("executions: the cursor keeps microsecond order (rows within one millisecond are not skipped)", async (t) => {
  const id = await script("burst", "export default () => 1");
  // recordExecution writes one row; these share a millisecond and differ in microseconds
  const base = new Date("2030-01-01T00:00:00.123Z");
  const made: string[] = [];
  for (let i = 0; i < 5; i++) {
    const eid = randomUUID();
    made.push(eid);
    await recordExecution(g.db, { id: eid, appId: T.appId, scriptId: id, kind: "direct", triggerDepth: 0, attempts: 1, queuedAt: base, startedAt: base, durationMs: 1, logs: [] });
    await g.db.query(sql.unsafe`UPDATE executions SET queued_at = queued_at + make_interval(secs => ${i * 0.0001}) WHERE id = ${eid}`);
  }
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await g.api(T.viewer.token).get(`${V1}/apps/shop/executions?limit=1&script_id=${id}${cursor ? `&cursor=${cursor}` : ""}`);
    seen.push(...r.body.items.map((e: { id: string }) => e.id));
    cursor = r.body.cursor;
  } while (cursor);
  t.deepEqual(seen, [...made].reverse());
});
