// The execution spine end to end: gateway + 2 dispatchers + sweeper as real processes.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { alive, startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

let p: Platform;
let token: string;
const scripts: Record<string, string> = {};
const V1 = "/api/v1/admin";

async function script(name: string, source: string, route: Record<string, unknown>, limits: Record<string, number> = {}): Promise<string> {
  const api = p.api(token);
  const s = await api.post(`${V1}/apps/spine/scripts`, { name, source, ...limits });
  if (s.status !== 201) throw new Error(JSON.stringify(s.body));
  const r = await api.post(`${V1}/scripts/${s.body.id}/routes`, route);
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  scripts[name] = s.body.id;
  return s.body.id;
}
const busy = (ms: number) => `const end = Date.now() + ${ms}; while (Date.now() < end) {}`;

test.before(async () => {
  p = await startPlatform({ dispatchers: 2 });
  token = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
  await p.api(token).post(`${V1}/apps`, { slug: "spine", name: "Spine" });
  await script("echo", `export default (ctx) => ({ status: 200, headers: { "x-script": "echo" }, body: { method: ctx.request.method, path: ctx.request.path, params: ctx.request.params, q: ctx.request.query, body: ctx.request.body, id: ctx.execution_id } })`, { path_kind: "pattern", path: "/echo/:name" });
  await script("invalid", `export default () => ({ status: 42 })`, { path: "/invalid" });
  await script("throws", `export default () => { throw new Error("kaput"); }`, { path: "/throws" });
  await script("slow", `export default () => { ${busy(5000)} }`, { path: "/slow" }, { timeout_ms: 300 });
  await script("bomb", `export default () => { const a = []; for (;;) a.push("x".repeat(1000) + a.length); }`, { path: "/bomb" }, { memory_mb: 8 });
  await script("big", `export default () => ({ status: 200, body: "y".repeat(20000) })`, { path: "/big" });
  await script("nothing", `export default () => undefined`, { path: "/nothing" });
  await script("async-ok", `export default (ctx) => ({ got: ctx.request.body })`, { path: "/async", dispatch_mode: "async" });
  await script("async-fail", `export default () => { throw new Error("always"); }`, { path: "/async-fail", dispatch_mode: "async" });
  await script("worker", `export default () => { ${busy(300)} return 1; }`, { path: "/work", dispatch_mode: "async" });
  await script("lingers", `export default () => { ${busy(1500)} return { late: true }; }`, { path: "/lingers" }, { timeout_ms: 5000 });
  await script("hangs", `export default () => { ${busy(8000)} }`, { path: "/hangs" }, { timeout_ms: 20000 });
});
test.after.always(() => p?.close());

const http = (path: string, init?: RequestInit) => fetch(p.url + path, init);

test("sync: the script's response, with params, query, JSON body and headers", async (t) => {
  const r = await http("/echo/pi?x=1&x=2&y=3", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ a: [1] }) });
  t.is(r.status, 200);
  t.is(r.headers.get("x-script"), "echo");
  const body = await r.json();
  t.like(body, { method: "POST", path: "/echo/pi", params: { name: "pi" }, q: { x: "1", y: "3" }, body: { a: [1] } });
  const text = await (await http("/echo/t", { method: "POST", body: "plain words" })).json();
  t.is(text.body, "plain words");
  t.is((await http("/nothing")).status, 204);
});

test("sync: the SPEC section 4 outcomes", async (t) => {
  const check = async (path: string, status: number, error: string) => {
    const r = await http(path);
    const body = await r.json();
    t.is(r.status, status, `${path}: ${JSON.stringify(body)}`);
    t.is(body.error, error);
    if (status !== 404) t.regex(body.execution_id, /^[0-9a-f-]{36}$/);
    return body;
  };
  t.regex((await check("/invalid", 422, "invalid_script")).message, /status/);
  t.is((await check("/throws", 502, "script_error")).message, "kaput");
  await check("/slow", 504, "timeout");
  await check("/bomb", 507, "memory_limit");
  await check("/no/such/route", 404, "not_found");
  const bad = await http("/echo/x", { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" });
  t.is(bad.status, 400);
});

test("sync: a reply larger than a NOTIFY travels through the executions table", async (t) => {
  const r = await http("/big");
  t.is(r.status, 200);
  t.is((await r.text()).length, 20000);
});

test("sync: 200 concurrent requests each get their own answer", async (t) => {
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => http(`/echo/n${i}`).then(async (r) => [r.status, await r.json()] as const)));
  replies.forEach(([status, body], i) => {
    t.is(status, 200);
    t.is(body.params.name, `n${i}`);
  });
  t.is(new Set(replies.map(([, b]) => b.id)).size, 200);
});

test("async: 202 with the execution id, then it runs and shows succeeded", async (t) => {
  const r = await http("/async", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ n: 7 }) });
  t.is(r.status, 202);
  const { execution_id, accepted_at } = await r.json();
  t.truthy(Date.parse(accepted_at));
  let shown: any;
  await waitUntil(async () => {
    shown = (await p.api(token).get(`${V1}/executions/${execution_id}`)).body;
    return shown.status === "succeeded";
  }, 10_000);
  t.is(shown.kind, "http_async");
  t.deepEqual(JSON.parse(shown.response.body), { got: { n: 7 } });
});

test("async: the same Idempotency-Key returns the first execution and runs once", async (t) => {
  const post = () => http("/async", { method: "POST", headers: { "idempotency-key": "order-42", "content-type": "application/json" }, body: "{}" }).then((r) => r.json());
  const [a, b, c] = await Promise.all([post(), post(), post()]);
  t.is(a.execution_id, b.execution_id);
  t.is(b.execution_id, c.execution_id);
  const other = await http("/async", { method: "POST", headers: { "idempotency-key": "order-43" } }).then((r) => r.json());
  t.not(other.execution_id, a.execution_id);
  await waitUntil(async () => (await p.api(token).get(`${V1}/executions/${a.execution_id}`)).body.status === "succeeded", 10_000);
  const runs = await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ${a.execution_id}`);
  t.is(Number(runs), 1);
});

test("async: a failing script is retried with backoff, keeps its error, and ends failed", async (t) => {
  const { execution_id } = await http("/async-fail", { method: "POST" }).then((r) => r.json());
  let shown: any;
  await waitUntil(async () => {
    shown = (await p.api(token).get(`${V1}/executions/${execution_id}`)).body;
    return shown.status === "failed";
  }, 15_000);
  t.is(shown.attempts, 3);
  t.like(shown.error, { code: "script_error", message: "always" });
  // 100 ms base, exponential: ≥ 100 + 200 ms (-20% jitter) between the first and last attempt
  t.true(Date.parse(shown.finished_at) - Date.parse(shown.queued_at) >= 240);
});

test.serial("abandoned: a sync caller that disconnects gets nothing; the result is kept", async (t) => {
  const ac = new AbortController();
  const pending = http("/lingers", { signal: ac.signal }).catch((e) => e);
  await new Promise((r) => setTimeout(r, 400));
  ac.abort();
  await pending;
  let rows: readonly any[] = [];
  await waitUntil(async () => {
    rows = (await p.api(token).get(`${V1}/apps/spine/abandoned-executions`)).body.items ?? [];
    return rows.length > 0;
  }, 10_000);
  t.is(rows[0].status, "succeeded");
  t.deepEqual(JSON.parse(rows[0].response.body), { late: true });
  t.is(rows[0].request.path, "/lingers");
});

test.serial("crash: kill -9 a dispatcher holding claims; every accepted execution still completes", async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await http("/work", { method: "POST" }).then((r) => r.json())).execution_id);
  const victim = p.procs.find((x) => x.name === "dispatcher" && alive(x))!;
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL`)) >= 2, 10_000, 10);
  victim.child.kill("SIGKILL");
  await victim.exited;
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ANY(${sql.array(ids, "uuid")}) AND status = 'succeeded'`)) === ids.length, 60_000, 200).catch((e) => {
    throw new Error(`${e.message}\n${p.output()}`);
  });
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ANY(${sql.array(ids, "uuid")})`)), 0);
  t.regex(p.output(), /recovered stale claims/);
  await p.start("dispatcher", { LOG_LEVEL: "info" });
});

test.serial("crash: a sync request whose dispatcher dies gets a 500 and is not run again", async (t) => {
  const pending = http("/hangs").then(async (r) => [r.status, await r.json()] as const);
  let holder = "";
  await waitUntil(async () => {
    holder = ((await p.db.maybeOneFirst(sql.unsafe`SELECT claimed_by FROM outbox WHERE kind = 'http_sync' AND claimed_by IS NOT NULL`)) as string) ?? "";
    return holder !== "";
  }, 10_000, 10);
  // the dispatcher that claimed it: its pid from the heartbeat table
  const pid = Number(await p.db.oneFirst(sql.unsafe`SELECT pid FROM dispatchers WHERE id = ${holder}`));
  const victim = p.procs.find((x) => x.child.pid === pid)!;
  victim.child.kill("SIGKILL");
  const [status, body] = await pending;
  t.is(status, 500);
  t.is(body.error, "internal");
  const row = await p.db.one(sql.unsafe`SELECT status, attempts FROM executions WHERE id = ${body.execution_id}`);
  t.like(row, { status: "failed", attempts: 1 });
  await p.start("dispatcher", { LOG_LEVEL: "info" });
});

test.serial("graceful shutdown: SIGTERM lets a dispatcher finish its work and exit 0", async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push((await http("/work", { method: "POST" }).then((r) => r.json())).execution_id);
  const d = p.procs.find((x) => x.name === "dispatcher" && alive(x))!;
  t.is(await p.stop(d, "SIGTERM"), 0);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ANY(${sql.array(ids, "uuid")})`)) === ids.length, 30_000, 100);
  // it said goodbye: no heartbeat row left behind
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM dispatchers WHERE pid = ${d.child.pid!}`)), 0);
});
