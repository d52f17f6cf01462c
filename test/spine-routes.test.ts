// The execution spine end to end over real HTTP: gateway + 2 dispatchers + sweeper as real
// processes (test/helpers/platform.ts). Serial tests (crashes, shutdowns) run first.
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
  await script("worker", `export default () => { ${busy(200)} return 1; }`, { path: "/work", dispatch_mode: "async" });
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

const executed = (ids: string[]) =>
  p.db.any(sql.unsafe`SELECT id, status, attempts FROM executions WHERE id = ANY(${sql.array(ids, "uuid")})`) as Promise<readonly { id: string; status: string; attempts: number }[]>;
const accept = async (path: string, n: number) => {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await http(path, { method: "POST" }).then((r) => r.json())).execution_id);
  return ids;
};
/** The dispatcher process holding a claim (by the pid in its heartbeat row). */
const holderOf = async (where: ReturnType<typeof sql.fragment>) => {
  let pid: number | null = null;
  await waitUntil(async () => {
    pid = (await p.db.maybeOneFirst(sql.unsafe`SELECT d.pid FROM outbox o JOIN dispatchers d ON d.id = o.claimed_by WHERE ${where} LIMIT 1`)) as number | null;
    return pid !== null;
  }, 10_000, 10);
  return p.byPid(pid!)!;
};

test.serial("crash: kill -9 a dispatcher holding async claims; every accepted execution still completes, via the sweeper", async (t) => {
  const ids = await accept("/work", 20);
  const victim = await holderOf(sql.fragment`o.id = ANY(${sql.array(ids, "uuid")})`);
  const victimId = await p.db.oneFirst(sql.unsafe`SELECT id FROM dispatchers WHERE pid = ${victim.child.pid!}`);
  const held = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by = ${victimId as string}`));
  victim.child.kill("SIGKILL");
  await victim.exited;
  await waitUntil(async () => (await executed(ids)).filter((e) => e.status === "succeeded").length === ids.length, 30_000, 100).catch((e) => {
    throw new Error(`${e.message}\n${p.output()}`);
  });
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ANY(${sql.array(ids, "uuid")})`)), 0);
  t.regex(p.output(), /recovered stale claims/);
  const attempts = (await executed(ids)).map((e) => e.attempts);
  t.true(attempts.some((a) => a === 2), "the ones it held ran again, their lost attempt counted");
  t.log(`the victim held ${held} claims when killed; attempts: ${JSON.stringify(attempts.reduce((m: Record<number, number>, a) => ((m[a] = (m[a] ?? 0) + 1), m), {}))}`);
  await p.start("dispatcher");
});

test.serial("crash: a sync request whose dispatcher dies gets a 500 and is not run again", async (t) => {
  const pending = http("/hangs").then(async (r) => [r.status, await r.json()] as const);
  const victim = await holderOf(sql.fragment`o.kind = 'http_sync'`);
  victim.child.kill("SIGKILL");
  const [status, body] = await pending;
  t.is(status, 500);
  t.deepEqual(body, { error: "internal", execution_id: body.execution_id });
  t.like(await p.db.one(sql.unsafe`SELECT status, attempts FROM executions WHERE id = ${body.execution_id}`), { status: "failed", attempts: 1 });
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${body.execution_id}`)), 0);
  await p.start("dispatcher");
});

test.serial("graceful shutdown: SIGTERM lets a dispatcher finish its work (heartbeating meanwhile, so nothing runs twice) and exit 0", async (t) => {
  const ids = await accept("/work", 8);
  const d = await holderOf(sql.fragment`o.id = ANY(${sql.array(ids, "uuid")})`);
  t.is(await p.stop(d, "SIGTERM"), 0);
  await waitUntil(async () => (await executed(ids)).length === ids.length, 30_000, 100);
  // its drain outlasted three heartbeats (the stale window) and still nothing was taken from it
  t.deepEqual((await executed(ids)).map((e) => [e.status, e.attempts]), ids.map(() => ["succeeded", 1]));
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM dispatchers WHERE pid = ${d.child.pid!}`)), 0, "it unregistered");
  await p.start("dispatcher");
});

test.serial("graceful shutdown: past PICLOUD_SHUTDOWN_TIMEOUT_MS a dispatcher hands its claims back (attempt not counted) and exits 0", async (t) => {
  for (const d of p.running("dispatcher")) t.is(await p.stop(d), 0);
  const d = await p.start("dispatcher", { PICLOUD_SHUTDOWN_TIMEOUT_MS: "100" });
  const ids = await accept("/work", 4);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ANY(${sql.array(ids, "uuid")}) AND claimed_by IS NOT NULL`)) === 4, 10_000, 10);
  const began = Date.now();
  t.is(await p.stop(d), 0);
  t.true(Date.now() - began < 2500, "within the bound (and the process's own exit)");
  t.regex(d.output(), /released unfinished claims/);
  const left = await p.db.any(sql.unsafe`SELECT claimed_by, attempts FROM outbox WHERE id = ANY(${sql.array(ids, "uuid")})`);
  t.true(left.length > 0);
  t.true(left.every((r: any) => r.claimed_by === null && r.attempts === 0));
  await Promise.all([p.start("dispatcher"), p.start("dispatcher")]);
  await waitUntil(async () => (await executed(ids)).length === ids.length, 30_000, 100);
  t.true((await executed(ids)).every((e) => e.status === "succeeded" && e.attempts === 1));
});

test("routes: a route created through the admin API answers at once, and a deleted one is 404 at once", async (t) => {
  t.is((await http("/fresh")).status, 404);
  const id = await script("fresh", `export default () => "new"`, { path: "/fresh" });
  const r = await http("/fresh");
  t.is(r.status, 200);
  t.is(await r.json(), "new");
  const routes = (await p.api(token).get(`${V1}/scripts/${id}/routes`)).body.items;
  t.is((await p.api(token).delete(`${V1}/routes/${routes[0].id}`)).status, 204);
  t.is((await http("/fresh")).status, 404);
});

test("sync: a request body with what jsonb cannot hold (U+0000, a lone surrogate) runs, with U+FFFD in their place", async (t) => {
  const raw = '{"a":"x\\u0000y","b":"\\ud800"}';
  const r = await http("/echo/odd", { method: "POST", headers: { "content-type": "application/json" }, body: raw });
  t.is(r.status, 200);
  t.deepEqual((await r.json()).body, { a: "x\ufffdy", b: "\ufffd" });
});
