// Faults: no dispatcher, a backlog over its limit, a dispatcher that stops answering, stopping
// every process, and a Postgres restart under load.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import test from "ava";
import { startEmbeddedPostgres } from "../lib/db/embedded.ts";
import { sql } from "../lib/db/pool.ts";
import { alive, startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

const V1 = "/api/v1/admin";

async function setup(p: Platform, routes: [string, string, Record<string, unknown>, Record<string, unknown>?][]): Promise<string> {
  const token = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
  await p.api(token).post(`${V1}/apps`, { slug: "faults", name: "Faults" });
  for (const [name, source, route, limits] of routes) {
    const s = await p.api(token).post(`${V1}/apps/faults/scripts`, { name, source, ...limits });
    const r = await p.api(token).post(`${V1}/scripts/${s.body.id}/routes`, route);
    if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  }
  return token;
}
const finished = (p: Platform, ids: string[]) => p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ANY(${sql.array(ids, "uuid")}) AND status = 'succeeded'`).then(Number);

test("no dispatcher: sync is 503 with Retry-After; async is accepted and runs once a dispatcher starts", async (t) => {
  const p = await startPlatform({ dispatchers: 0 });
  t.teardown(() => p.close());
  await setup(p, [
    ["hello", "export default () => ({ hi: 1 })", { path: "/hello" }],
    ["later", "export default () => ({ later: 1 })", { path: "/later", dispatch_mode: "async" }],
  ]);
  const r = await fetch(`${p.url}/hello`);
  t.is(r.status, 503);
  t.is(r.headers.get("retry-after"), "1");
  t.like(await r.json(), { error: "unavailable", message: "no dispatcher is running" });
  const a = await fetch(`${p.url}/later`, { method: "POST" });
  t.is(a.status, 202);
  const { execution_id } = await a.json();
  await p.start("dispatcher");
  await waitUntil(async () => (await finished(p, [execution_id])) === 1, 15_000);
  await waitUntil(async () => (await fetch(`${p.url}/hello`)).status === 200, 5_000);
  t.pass();
});

test("a ready backlog over PICLOUD_MAX_BACKLOG makes sync routes answer 503", async (t) => {
  const p = await startPlatform({ dispatchers: 1, env: { PICLOUD_MAX_BACKLOG: "5", PICLOUD_DISPATCHER_CONCURRENCY: "1" } });
  t.teardown(() => p.close());
  await setup(p, [
    ["hello", "export default () => ({ hi: 1 })", { path: "/hello" }],
    ["slowly", "export default () => { const end = Date.now() + 200; while (Date.now() < end) {} }", { path: "/slowly", dispatch_mode: "async" }],
  ]);
  t.is((await fetch(`${p.url}/hello`)).status, 200);
  for (let i = 0; i < 20; i++) await fetch(`${p.url}/slowly`, { method: "POST" });
  await new Promise((r) => setTimeout(r, 600)); // the gateway's capacity snapshot is up to 500 ms old
  const r = await fetch(`${p.url}/hello`);
  t.is(r.status, 503);
  t.like(await r.json(), { error: "unavailable", message: "the backlog is over its limit" });
});

test("no reply in time: 504, the row abandoned, its late result kept; SIGTERM: every process exits 0 and a waiting sync caller is answered", async (t) => {
  // one dispatcher and no sweeper: a frozen dispatcher keeps its claim, nothing recovers it
  const p = await startPlatform({ dispatchers: 1, sweeper: false, env: { PICLOUD_SHUTDOWN_TIMEOUT_MS: "500" } });
  t.teardown(() => p.close());
  const token = await setup(p, [
    ["quick", "export default () => { const end = Date.now() + 300; while (Date.now() < end) {} return { done: true }; }", { path: "/quick" }, { timeout_ms: 1000 }],
    ["long", "export default () => { const end = Date.now() + 1500; while (Date.now() < end) {} return 'finally'; }", { path: "/long" }],
  ]);
  const [d] = p.running("dispatcher");
  // freeze the dispatcher as soon as it claims: no reply comes within timeout_ms + 2 s
  const pending = fetch(`${p.url}/quick`).then(async (r) => [r.status, await r.json()] as const);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL`)) === 1, 10_000, 5);
  d!.child.kill("SIGSTOP");
  const began = Date.now();
  const [status, body] = await pending;
  t.is(status, 504);
  t.deepEqual(body, { error: "timeout", execution_id: body.execution_id });
  t.true(Date.now() - began < 3000 + 1000, "timeout_ms + 2 s");
  t.true(await p.db.oneFirst(sql.unsafe`SELECT abandoned FROM outbox WHERE id = ${body.execution_id}`) as boolean);
  d!.child.kill("SIGCONT");
  let kept: any;
  await waitUntil(async () => {
    kept = (await p.api(token).get(`${V1}/apps/faults/abandoned-executions`)).body.items?.[0];
    return kept !== undefined;
  }, 10_000);
  // frozen past its deadline, the run fails (timeout) or, thawed in time, succeeds: kept either way
  t.like(kept, { id: body.execution_id, request: { path: "/quick", method: "GET" } });
  if (kept.status === "succeeded") t.deepEqual(JSON.parse(kept.response.body), { done: true });
  else {
    t.is(kept.status, "failed");
    t.log(`the frozen run was kept as abandoned: failed with ${JSON.stringify(kept.error)}`);
  }
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ${body.execution_id}`)), 1, "it ran once");

  // SIGTERM to the gateway while a caller waits on a long script: the caller gets an answer
  // within the shutdown bound (the row, already claimed, is marked abandoned), then exit 0
  const sweeper = await p.start("sweeper");
  const waiting = fetch(`${p.url}/long`).then(async (r) => [r.status, await r.json()] as const, (e) => ["error", String(e)] as const);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by IS NOT NULL`)) === 1, 10_000, 5);
  const gateway = p.running("gateway")[0]!;
  t.is(await p.stop(gateway), 0);
  const [lateStatus, lateBody] = await waiting;
  t.is(lateStatus, 504, JSON.stringify(lateBody));
  t.is(await p.stop(sweeper), 0);
  t.is(await p.stop(d!), 0);
  t.true(p.procs.every((x) => !alive(x)));
  // the dispatcher finished the long run before exiting (or handed it back): it is not lost
  const done = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM abandoned_executions WHERE request->>'path' = '/long'`));
  const queued = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by IS NULL`));
  t.is(done + queued, 1);
});

test("a Postgres restart loses no accepted work and every process recovers by itself", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "picloud-restart-"));
  const port = 5440 + Math.floor(Math.random() * 50);
  let pg = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), port, database: "restart" });
  t.teardown(async () => {
    await pg.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const p = await startPlatform({ dispatchers: 2, dbUrl: pg.url });
  t.teardown(() => p.close());
  await setup(p, [
    ["hello", "export default (ctx) => ({ path: ctx.request.path })", { path_kind: "prefix", path: "/hello" }],
    ["work", "export default () => { const end = Date.now() + 50; while (Date.now() < end) {} return 1; }", { path: "/work", dispatch_mode: "async" }],
    ["across", "export default () => { const end = Date.now() + 1500; while (Date.now() < end) {} return { across: true }; }", { path: "/across" }],
  ]);
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) ids.push((await (await fetch(`${p.url}/work`, { method: "POST" })).json()).execution_id);

  // a sync execution running while the server goes away: its dispatcher keeps the result and
  // commits it once Postgres is back; the caller hears it (or the gateway finds it after its
  // listener reconnects)
  const across = fetch(`${p.url}/across`).then(async (r) => [r.status, await r.json()] as const);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE kind = 'http_sync' AND claimed_by IS NOT NULL`)) === 1, 10_000, 5);
  // a sync caller arriving while the server goes away gets an answer, not a hang
  const inflight = fetch(`${p.url}/hello/during`).then((r) => r.status).catch(() => "connection error");
  await pg.stop();
  await new Promise((r) => setTimeout(r, 1000));
  pg = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), port, database: "restart" });
  const inflightStatus = await inflight;
  t.true([200, 500, 503, 504].includes(inflightStatus as number), `in-flight sync got ${inflightStatus}`);
  const [acrossStatus, acrossBody] = await across;
  t.is(acrossStatus, 200, `${JSON.stringify(acrossBody)}\n${p.output()}`);
  t.deepEqual(acrossBody, { across: true });

  // the processes were not restarted
  t.true(p.procs.every((x) => x.child.exitCode === null && x.child.signalCode === null), p.output());
  await waitUntil(async () => (await fetch(`${p.url}/readyz`)).status === 200, 20_000, 200);
  // accepted before the restart: all complete
  await waitUntil(async () => (await finished(p, ids)) === ids.length, 60_000, 250).catch((e) => {
    throw new Error(`${e.message}\n${p.output()}`);
  });
  // and new work flows both ways
  const after = (await (await fetch(`${p.url}/work`, { method: "POST" })).json()).execution_id;
  await waitUntil(async () => (await finished(p, [after])) === 1, 20_000, 200);
  await waitUntil(async () => (await fetch(`${p.url}/hello/after`)).status === 200, 20_000, 200);
  t.deepEqual(await (await fetch(`${p.url}/hello/after`)).json(), { path: "/hello/after" });
  t.regex(p.output(), /listener reconnected/);
  const attempts = await p.db.anyFirst(sql.unsafe`SELECT attempts FROM executions WHERE id = ANY(${sql.array(ids, "uuid")})`);
  const byAttempts = (attempts as number[]).reduce((m: Record<number, number>, a) => ((m[a] = (m[a] ?? 0) + 1), m), {});
  t.log(`sync running across the restart answered ${acrossStatus}; a sync caller arriving as it stopped answered ${inflightStatus}; ${ids.length} async executions accepted before the restart all succeeded, by attempts: ${JSON.stringify(byAttempts)}; listener reconnects: ${(p.output().match(/listener reconnected/g) ?? []).length}; replies found by catch-up after a reconnect: ${p.output().includes("answered sync callers whose reply") ? "yes" : "no (heard by NOTIFY)"}`);
});
