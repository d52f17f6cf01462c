// Prometheus metrics: each counter and gauge moves when its event really happens, on the real
// processes (gateway, dispatcher, sweeper) that count it, scraped over HTTP behind the token; the
// exposition parses strictly (and `promtool check metrics` accepts it where promtool is installed).
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { metricsPort } from "../lib/metrics/http.ts";
import * as metrics from "../lib/metrics/index.ts";
import { loadConfig, ConfigError } from "../lib/config.ts";
import { freePort, startPlatform, waitUntil, type Platform, type Proc } from "./helpers/platform.ts";
import { parseExposition, promtoolCheck, scrape, valueOf, type Exposition } from "./helpers/prom.ts";

const TOKEN = "metrics-token-0123456789";
const V1 = "/api/v1/admin";
let p: Platform;
let owner: string;
const scripts: Record<string, string> = {};

const gateway = () => p.running("gateway")[0]!;
const dispatcher = () => p.running("dispatcher")[0]!;
const sweeper = () => p.running("sweeper")[0]!;
const read = (proc: Proc) => scrape(proc.metricsUrl!, TOKEN);
const val = (e: Exposition, name: string, labels: Record<string, string> = {}) => valueOf(e, name, labels) ?? 0;
/** Waits until a metric of `proc` reaches `atLeast`. */
async function reaches(proc: Proc, name: string, labels: Record<string, string>, atLeast: number): Promise<number> {
  let v = 0;
  await waitUntil(async () => (v = val(await read(proc), name, labels)) >= atLeast, 15_000, 100).catch(() => {
    throw new Error(`${name}${JSON.stringify(labels)} on the ${proc.name} stayed at ${v}, expected >= ${atLeast}\n${p.output().slice(-3000)}`);
  });
  return v;
}

async function script(name: string, source: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await p.api(owner).post(`${V1}/apps/m/scripts`, { name, source, ...extra });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
  return (scripts[name] = r.body.id);
}
async function route(scriptName: string, path: string, mode: "sync" | "async" = "sync"): Promise<void> {
  const r = await p.api(owner).post(`${V1}/scripts/${scripts[scriptName]}/routes`, { path, dispatch_mode: mode });
  if (r.status !== 201) throw new Error(JSON.stringify(r.body));
}
const busy = (ms: number) => `const until = Date.now() + ${ms}; while (Date.now() < until) {}`;

test.before(async () => {
  p = await startPlatform({
    dispatchers: 1,
    metrics: true,
    env: { PICLOUD_METRICS_TOKEN: TOKEN, PICLOUD_MAX_TRIGGER_DEPTH: "1", PICLOUD_TRIGGER_RETRY_MAX_ATTEMPTS: "2" },
  });
  owner = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
  await p.api(owner).post(`${V1}/apps`, { slug: "m", name: "metrics" });
  await script("echo", `export default (ctx) => ({ status: 200, body: { v: ctx.request.query.v ?? null } })`);
  await script("boom", `export default () => { throw new Error("boom"); }`);
  await script("slow", `export default () => { ${busy(1500)} return "slow"; }`, { timeout_ms: 10000 });
  await route("echo", "/echo");
  await route("echo", "/echo-later", "async");
  await route("boom", "/boom");
  await route("boom", "/fail-later", "async");
  await route("slow", "/slow");
  await route("slow", "/slow-later", "async");
});
test.after.always(() => p?.close());

test.serial("every process serves /metrics behind the token, in a format that parses strictly (and that promtool accepts when installed)", async (t) => {
  for (const proc of [gateway(), dispatcher(), sweeper()]) {
    const denied = await fetch(proc.metricsUrl!);
    t.is(denied.status, 401, proc.name);
    t.is((await fetch(proc.metricsUrl!, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status, 401);
    const e = await read(proc);
    // prom-client's process metrics, with the process's name on every series
    t.true(val(e, "process_cpu_user_seconds_total") > 0, proc.name);
    t.true(e.types.has("nodejs_eventloop_lag_seconds"));
    t.true(e.samples.every((s) => s.labels.service === proc.name), proc.name);
    t.is(e.types.get("picloud_executions_total"), "counter");
    t.is(e.types.get("picloud_execution_duration_seconds"), "histogram");
    const promtool = promtoolCheck(e.text);
    if (promtool) t.deepEqual(promtool.problems, [], `${proc.name}: promtool check metrics:\n${promtool.output}`);
    else t.log("promtool is not installed: the strict parser alone checked the format");
  }
  // the gauges belong to the process that has their source
  const [g, d, s] = await Promise.all([read(gateway()), read(dispatcher()), read(sweeper())]);
  t.true(g.types.has("picloud_outbox_ready_rows") && g.types.has("picloud_outbox_oldest_ready_age_seconds"));
  t.true(d.types.has("picloud_dispatcher_in_flight") && d.types.has("picloud_dispatcher_free_slots"));
  t.false(d.types.has("picloud_outbox_ready_rows") || s.types.has("picloud_dispatcher_in_flight"));
  t.is((await fetch(dispatcher().metricsUrl!.replace("/metrics", "/other"))).status, 404);
});

test.serial("the strict parser refuses what Prometheus would refuse", (t) => {
  t.notThrows(() => parseExposition('# TYPE a_total counter\na_total{x="1"} 2\n'));
  t.throws(() => parseExposition("a_total 1\n"), { message: /no TYPE/ });
  t.throws(() => parseExposition('# TYPE a gauge\na{x="1} 2\n'), { message: /unterminated/ });
  t.throws(() => parseExposition("# TYPE a gauge\na one\n"), { message: /bad sample value/ });
  t.throws(() => parseExposition("# TYPE a counter\na -1\n"), { message: /negative/ });
  t.throws(() => parseExposition('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), { message: /cumulative/ });
  t.throws(() => parseExposition("# TYPE a gauge\na 1"), { message: /newline/ });
  // and promtool, where installed, refuses the same broken label
  const promtool = promtoolCheck('# TYPE a gauge\na{x="1} 2\n');
  if (promtool) t.regex(promtool.problems.join("\n"), /parsing error/);
});

test.serial("sync requests: executions by kind and outcome and their durations (dispatcher), end-to-end latency by outcome (gateway)", async (t) => {
  const [g0, d0] = await Promise.all([read(gateway()), read(dispatcher())]);
  for (const v of ["a", "b", "c"]) t.deepEqual((await p.api().get(`/echo?v=${v}`)).body, { v });
  t.is((await p.api().get("/boom")).status, 502);
  const d1 = await read(dispatcher());
  t.is(val(d1, "picloud_executions_total", { kind: "http_sync", outcome: "succeeded" }) - val(d0, "picloud_executions_total", { kind: "http_sync", outcome: "succeeded" }), 3);
  t.is(val(d1, "picloud_executions_total", { kind: "http_sync", outcome: "script_error" }) - val(d0, "picloud_executions_total", { kind: "http_sync", outcome: "script_error" }), 1);
  t.is(val(d1, "picloud_execution_duration_seconds_count", { kind: "http_sync" }) - val(d0, "picloud_execution_duration_seconds_count", { kind: "http_sync" }), 4);
  const g1 = await read(gateway());
  const synced = (e: Exposition, outcome: string) => val(e, "picloud_sync_request_duration_seconds_count", { outcome });
  t.is(synced(g1, "succeeded") - synced(g0, "succeeded"), 3);
  t.is(synced(g1, "script_error") - synced(g0, "script_error"), 1);
  t.true(val(g1, "picloud_sync_request_duration_seconds_sum", { outcome: "succeeded" }) > val(g0, "picloud_sync_request_duration_seconds_sum", { outcome: "succeeded" }));
});

/** The JSON log lines a process wrote. */
const lines = (proc: Proc) => proc.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

test.serial("one JSON log line per request (gateway) and per execution (dispatcher), with app, script, execution id, outcome and duration; LOG_LEVEL respected", async (t) => {
  const r = await p.api().get("/boom");
  t.is(r.status, 502);
  const id = r.body.execution_id as string;
  let request: Record<string, unknown> | undefined;
  let execution: Record<string, unknown> | undefined;
  await waitUntil(() => {
    request = lines(gateway()).find((l) => l.msg === "request" && l.execution_id === id);
    execution = lines(dispatcher()).find((l) => l.msg === "execution finished" && l.execution_id === id);
    return !!request && !!execution;
  }, 15_000);
  t.like(request, { level: 30, service: "gateway", method: "GET", path: "/boom", status: 502, app: "m", script: "boom", outcome: "script_error" });
  t.is(typeof request!.duration_ms, "number");
  t.like(execution, { level: 30, service: "dispatcher", app: "m", script: "boom", kind: "http_sync", outcome: "script_error" });
  t.is(typeof execution!.duration_ms, "number");
  t.is(lines(gateway()).filter((l) => l.execution_id === id && l.msg === "request").length, 1);
  // probes log at debug: absent at LOG_LEVEL=info, present at debug (the harness polled /readyz)
  t.false(lines(gateway()).some((l) => l.path === "/readyz"));
  const chatty = await p.start("gateway", { PICLOUD_PORT: String(await freePort()), LOG_LEVEL: "debug" });
  await waitUntil(() => lines(chatty).some((l) => l.path === "/readyz" && l.level === 20), 5000); // its output may trail the answer
  await p.stop(chatty);
});

test.serial("a failing async route: a retry, a dead letter; its failing handler: a handler failure", async (t) => {
  await script("handler", `export default () => { throw new Error("handler fails too"); }`);
  const trig = await p.api(owner).post(`${V1}/apps/m/triggers/dead_letter`, { script_id: scripts.handler, retry: { max_attempts: 1 } });
  t.is(trig.status, 201);
  const d0 = await read(dispatcher());
  t.is((await p.api().post("/fail-later")).status, 202);
  // 2 attempts (PICLOUD_TRIGGER_RETRY_MAX_ATTEMPTS) → 1 retry, 1 dead letter → its handler fails once → handler_failed
  await waitUntil(async () => (await p.db.maybeOne(sql.unsafe`SELECT 1 FROM dead_letters WHERE resolution = 'handler_failed'`)) !== null, 15_000);
  const d = dispatcher();
  const at = (name: string, labels: Record<string, string> = {}) => val(d0, name, labels);
  t.is(await reaches(d, "picloud_dead_letter_handler_failures_total", {}, at("picloud_dead_letter_handler_failures_total") + 1), at("picloud_dead_letter_handler_failures_total") + 1);
  const d1 = await read(d);
  t.is(val(d1, "picloud_execution_retries_total", { kind: "http_async" }) - at("picloud_execution_retries_total", { kind: "http_async" }), 1);
  t.is(val(d1, "picloud_dead_letters_written_total", { kind: "http_async" }) - at("picloud_dead_letters_written_total", { kind: "http_async" }), 1);
  t.is(val(d1, "picloud_executions_total", { kind: "http_async", outcome: "script_error" }) - at("picloud_executions_total", { kind: "http_async", outcome: "script_error" }), 2);
  t.is(val(d1, "picloud_executions_total", { kind: "dead_letter", outcome: "script_error" }) - at("picloud_executions_total", { kind: "dead_letter", outcome: "script_error" }), 1);
  // a failed dead-letter handler writes no dead letter of its own
  t.is(val(d1, "picloud_dead_letters_written_total", { kind: "dead_letter" }), 0);
  await p.api(owner).delete(`${V1}/apps/m/triggers/${trig.body.id}`);
});

test.serial("a KV trigger chain past PICLOUD_MAX_TRIGGER_DEPTH (1): the dropped row is counted once its completion commits", async (t) => {
  await script("chain", `export default async (ctx) => { await kv.collection("chain").set("k" + (ctx.trigger_depth + 1), ctx.trigger_depth); }`);
  t.is((await p.api(owner).post(`${V1}/apps/m/triggers/kv`, { script_id: scripts.chain, collection_glob: "chain", ops: ["insert"] })).status, 201);
  const d0 = await read(dispatcher());
  // admin write → depth 0 run writes k1 → depth 1 run writes k2 → its row (depth 2) is dropped
  t.is((await p.api(owner).put(`${V1}/apps/m/kv/chain/keys/k0`, { value: 0 })).status, 201);
  const before = val(d0, "picloud_trigger_depth_exceeded_total");
  t.is(await reaches(dispatcher(), "picloud_trigger_depth_exceeded_total", {}, before + 1), before + 1);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT depth_exceeded FROM trigger_drops`)), 1);
  const d1 = await read(dispatcher());
  t.is(val(d1, "picloud_executions_total", { kind: "kv", outcome: "succeeded" }) - val(d0, "picloud_executions_total", { kind: "kv", outcome: "succeeded" }), 2);
});

test.serial("a direct run (POST /api/v1/execute) is counted by the gateway that ran it", async (t) => {
  const g0 = await read(gateway());
  const r = await p.api(owner).post(`/api/v1/execute/${scripts.echo}`, { request: { query: { v: "direct" } } });
  t.is(r.status, 200);
  const g1 = await read(gateway());
  t.is(val(g1, "picloud_executions_total", { kind: "direct", outcome: "succeeded" }) - val(g0, "picloud_executions_total", { kind: "direct", outcome: "succeeded" }), 1);
});

test.serial("a sync caller who leaves while the script runs: an abandoned execution (gateway)", async (t) => {
  const g0 = await read(gateway());
  const leave = new AbortController();
  const call = fetch(`${p.url}/slow`, { signal: leave.signal }).catch(() => "aborted");
  await reaches(dispatcher(), "picloud_dispatcher_in_flight", {}, 1); // claimed and running
  leave.abort();
  t.is(await call, "aborted");
  const was = val(g0, "picloud_abandoned_executions_total", { reason: "disconnected", row: "marked" });
  t.is(await reaches(gateway(), "picloud_abandoned_executions_total", { reason: "disconnected", row: "marked" }, was + 1), was + 1);
  await waitUntil(async () => val(await read(dispatcher()), "picloud_dispatcher_in_flight") === 0, 10_000);
});

test.serial("in flight and free slots (dispatcher); a killed dispatcher: outbox backlog and its age (gateway), the stale claim recovered and retried (sweeper)", async (t) => {
  const s0 = await read(sweeper());
  t.is((await p.api().post("/slow-later")).status, 202);
  await reaches(dispatcher(), "picloud_dispatcher_in_flight", {}, 1);
  const d = await read(dispatcher());
  t.is(val(d, "picloud_dispatcher_in_flight"), 1);
  t.is(val(d, "picloud_dispatcher_free_slots"), 15); // PICLOUD_DISPATCHER_CONCURRENCY 16
  await p.stop(dispatcher(), "SIGKILL");
  // nobody claims now: the backlog grows and ages
  for (let i = 0; i < 3; i++) t.is((await p.api().post(`/echo-later?v=${i}`)).status, 202);
  await new Promise((r) => setTimeout(r, 300));
  const g = await read(gateway());
  t.true(val(g, "picloud_outbox_ready_rows") >= 3, String(val(g, "picloud_outbox_ready_rows")));
  t.true(val(g, "picloud_outbox_oldest_ready_age_seconds") >= 0.25, String(val(g, "picloud_outbox_oldest_ready_age_seconds")));
  const was = val(s0, "picloud_stale_claims_recovered_total");
  t.is(await reaches(sweeper(), "picloud_stale_claims_recovered_total", {}, was + 1), was + 1);
  const s1 = await read(sweeper());
  t.is(val(s1, "picloud_execution_retries_total", { kind: "http_async" }) - val(s0, "picloud_execution_retries_total", { kind: "http_async" }), 1);
  // a dispatcher again: the backlog drains
  await p.start("dispatcher");
  await waitUntil(async () => {
    const e = await read(gateway());
    return val(e, "picloud_outbox_ready_rows") === 0 && val(e, "picloud_outbox_oldest_ready_age_seconds") === 0;
  }, 15_000);
});

test.serial("a lost LISTEN connection: the reconnect is counted (gateway and dispatcher), and the platform still answers", async (t) => {
  const [g0, d0] = await Promise.all([read(gateway()), read(dispatcher())]);
  await p.db.query(sql.unsafe`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
  const name = "picloud_listener_reconnects_total";
  t.is(await reaches(gateway(), name, {}, val(g0, name) + 1), val(g0, name) + 1);
  t.is(await reaches(dispatcher(), name, {}, val(d0, name) + 1), val(d0, name) + 1);
  await waitUntil(async () => (await p.api().get("/echo?v=back")).status === 200, 10_000);
  t.deepEqual((await p.api().get("/echo?v=back")).body, { v: "back" });
});

test.serial("the backlog query is served by the partial index outbox_ready", async (t) => {
  const plan = await p.db.transaction(async (tx) => {
    await tx.query(sql.unsafe`SET LOCAL enable_seqscan = off`);
    return (await tx.anyFirst(sql.unsafe`EXPLAIN ${metrics.OUTBOX_READY}`)).join("\n");
  });
  t.regex(String(plan), /Index Only Scan using outbox_ready|Index Scan using outbox_ready|Bitmap Index Scan on outbox_ready/, String(plan));
});

test("counts made inside a transaction are counted only if it commits (in-process)", async (t) => {
  const value = async () => (await metrics.triggerDepthExceeded.get()).values[0]?.value ?? 0;
  const v0 = await value();
  await t.throwsAsync(
    metrics.settling(
      () => ["e1"],
      async () => {
        metrics.countAfterCommit("e1", () => metrics.triggerDepthExceeded.inc());
        throw new Error("rolled back");
      },
    ),
  );
  t.is(await value(), v0);
  await metrics.settling(
    () => ["e2"],
    async () => metrics.countAfterCommit("e2", () => metrics.triggerDepthExceeded.inc()),
  );
  t.is(await value(), v0 + 1);
  t.is(metrics.stagedCount(), 0);
});

test("metrics ports: off by default; the sweeper on PICLOUD_METRICS_PORT, dispatcher n on + 1 + n; bad values refused", (t) => {
  t.is(metricsPort("sweeper", loadConfig({})), null);
  t.is(metricsPort("dispatcher", loadConfig({})), null);
  t.is(metricsPort("sweeper", loadConfig({ PICLOUD_METRICS_PORT: "9464" })), 9464);
  t.is(metricsPort("dispatcher", loadConfig({ PICLOUD_METRICS_PORT: "9464" })), 9465);
  t.is(metricsPort("dispatcher", loadConfig({ PICLOUD_METRICS_PORT: "9464", NODE_APP_INSTANCE: "2" })), 9467);
  for (const [env, says] of [
    [{ PICLOUD_METRICS_PORT: "70000" }, "PICLOUD_METRICS_PORT"],
    [{ PICLOUD_METRICS_PORT: "65535" }, "at most 65535"],
    [{ NODE_APP_INSTANCE: "x" }, "NODE_APP_INSTANCE"],
    [{ PICLOUD_METRICS_TOKEN: "short" }, "PICLOUD_METRICS_TOKEN"],
    [{ PICLOUD_HOST: "no spaces here" }, "PICLOUD_HOST"],
  ] as const) {
    const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError });
    t.true(err!.message.includes(says), err!.message);
  }
});
