// bench/spine: the execution spine on loopback, every figure beside a floor measured in the same
// run, one table.    node --import tsx bench/spine.ts      (npm run bench:spine)
//
// Floors: (1) raw pg request/reply — the client INSERTs a row + NOTIFY, a worker process claims
// with FOR UPDATE SKIP LOCKED and NOTIFYs the reply (no HTTP, no QuickJS), with a per-request
// reply channel (the product's design) and with one shared reply channel per client;
// (2) graphile-worker 0.17.3 draining no-op jobs with 2 processes × concurrency 10.
// picloud: gateway + 2 dispatchers + sweeper as real processes (production timings), a trivial
// script `export default () => ({ ok: true })` behind a sync and an async route.
//
// The machine is shared and noisy: the latency phases run in BENCH_ROUNDS rounds, each round
// interleaving floor and picloud at every concurrency, and the table shows per-round medians.
// CPU ms per request (from /proc, every process and Postgres backend involved) is the figure that
// noise moves least; it says where the time goes.
//
// Knobs (defaults are the sizes): BENCH_QUICK=1 (a short smoke run), BENCH_ROUNDS (3),
// BENCH_PHASE_MS (5000 per concurrency level and variant), BENCH_SOAK_MS (30000),
// BENCH_DRAIN_N (20000), BENCH_DISPATCHERS (2), BENCH_LOG_LEVEL (warn), BENCH_PROF=<dir>
// (--cpu-prof for the gateway and dispatchers, written when they stop), DATABASE_URL (the
// server; databases picloud_bench_* are created on it and dropped at the end).
import { createServer } from "node:net";
import pg from "pg";
import { migrate } from "../lib/db/migrate.ts";
import { graphileDrain } from "./floors/graphile.ts";
import { startRawFloor } from "./floors/raw.ts";
import {
  backendPids, closedLoop, cpuSince, cpuSnapshot, dropAll, envInt, fixedCount, freshDb, httpClient, median, rssMb, sleep, startService, stopService,
  type Child, type CpuGroups, type Load,
} from "./lib/harness.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = envInt("BENCH_ROUNDS", QUICK ? 1 : 3);
const PHASE_MS = envInt("BENCH_PHASE_MS", QUICK ? 1500 : 5000);
const SOAK_MS = envInt("BENCH_SOAK_MS", QUICK ? 5000 : 30_000);
const DRAIN_N = envInt("BENCH_DRAIN_N", QUICK ? 2000 : 20_000);
const DISPATCHERS = envInt("BENCH_DISPATCHERS", 2);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";
const PROF = process.env.BENCH_PROF;
const LEVELS = [1, 8, 32, 50];
const CPU_AT = 32;
const ACCEPT_CALLERS = 32;

const tag = `${process.pid}`;
const names = { raw: `picloud_bench_raw_${tag}`, gw: `picloud_bench_gw_${tag}`, spine: `picloud_bench_spine_${tag}` };
const log = (msg: string) => process.stderr.write(`[bench/spine ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

let cleaning: Promise<void> | undefined;
const services: Child[] = [];
const floorsToClose: { close(): Promise<void> }[] = [];
async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(services.map((s) => stopService(s).catch(() => undefined)));
    for (const f of floorsToClose) await f.close().catch(() => undefined);
    await dropAll();
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

// ---------- picloud ----------
async function startPicloud() {
  const url = await freshDb(names.spine);
  await migrate(url);
  const port = await freePort();
  const env = { DATABASE_URL: url, PICLOUD_PORT: String(port), PICLOUD_HOST: "127.0.0.1", LOG_LEVEL };
  // One folder per process: a process's main thread and each of its worker threads write a profile.
  const prof = (name: string) => (PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}/${name}`] : []);
  const gateway = await startService("gateway", env, prof("gateway"));
  services.push(gateway);
  const dispatchers: Child[] = [];
  for (let i = 0; i < DISPATCHERS; i++) {
    const d = await startService("dispatcher", env, prof(`dispatcher-${i + 1}`));
    services.push(d);
    dispatchers.push(d);
  }
  const sweeper = await startService("sweeper", env);
  services.push(sweeper);

  const api = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, string>;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200).catch(() => false);
    if (ok) break;
    await sleep(100);
  }
  const { token } = await api("POST", "/api/v1/admin/bootstrap", { email: "bench@example.com", password: "bench-password" });
  await api("POST", "/api/v1/admin/apps", { slug: "bench", name: "Bench" }, token);
  for (const mode of ["sync", "async"]) {
    const s = await api("POST", "/api/v1/admin/apps/bench/scripts", { name: mode, source: "export default () => ({ ok: true })" }, token);
    await api("POST", `/api/v1/admin/scripts/${s.id}/routes`, { path: `/${mode}`, dispatch_mode: mode }, token);
  }
  const check = await fetch(`http://127.0.0.1:${port}/sync`);
  const body = await check.text();
  if (check.status !== 200 || JSON.parse(body).ok !== true) throw new Error(`the sync route answered ${check.status} ${body}`);

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const rss = { dispatcherMax: 0, gatewayMax: 0 };
  const sampler = setInterval(() => {
    for (const d of dispatchers) rss.dispatcherMax = Math.max(rss.dispatcherMax, rssMb(d.pid));
    rss.gatewayMax = Math.max(rss.gatewayMax, rssMb(gateway.pid));
  }, 250);
  const cpuGroups: CpuGroups = {
    gateway: () => [gateway.pid],
    dispatchers: () => dispatchers.map((d) => d.pid),
    sweeper: () => [sweeper.pid],
    postgres: () => backendPids(names.spine),
    "bench client": () => [process.pid],
  };
  return {
    port,
    db,
    dispatchers,
    rss,
    cpuGroups,
    async close() {
      clearInterval(sampler);
      await db.end();
      await Promise.all(services.splice(0).map((s) => stopService(s)));
    },
  };
}

/** A closed-loop phase with a fresh keep-alive agent; with CPU per request when asked. */
async function httpPhase(port: number, callers: number, ms: number, route = "/sync", cpu?: CpuGroups) {
  const client = httpClient(port);
  const before = cpu && (await cpuSnapshot(cpu));
  const load = await closedLoop(callers, ms, () => client.request("GET", route, 200));
  const used = cpu && before ? await cpuSince(before, cpu) : undefined;
  client.close();
  return { load, cpu: used && perRequest(used, load.n) };
}
async function floorPhase(once: () => Promise<true>, callers: number, ms: number, cpu?: CpuGroups) {
  const before = cpu && (await cpuSnapshot(cpu));
  const load = await closedLoop(callers, ms, once);
  const used = cpu && before ? await cpuSince(before, cpu) : undefined;
  return { load, cpu: used && perRequest(used, load.n) };
}
const perRequest = (used: Record<string, number>, n: number) => Object.fromEntries(Object.entries(used).map(([k, v]) => [k, v / n]));

/** Waits until the outbox is empty; returns when that was seen (ms, performance.now()). */
async function outboxEmpty(db: pg.Client): Promise<number> {
  for (;;) {
    const { rows } = await db.query<{ left: boolean }>("SELECT EXISTS (SELECT 1 FROM outbox) AS left");
    if (!rows[0]!.left) return performance.now();
    await sleep(20);
  }
}
async function succeededAsync(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM executions WHERE kind = 'http_async' AND status = 'succeeded'");
  return rows[0]!.n;
}

// ---------- the run ----------
type Phase = { load: Load; cpu?: Record<string, number> };
const results = { floorPer: new Map<number, Phase[]>(), floorShared: new Map<number, Phase[]>(), sync: new Map<number, Phase[]>() };
const push = (m: Map<number, Phase[]>, c: number, p: Phase) => m.set(c, [...(m.get(c) ?? []), p]);

const startedAt = performance.now();
log(`rounds ${ROUNDS} × ${PHASE_MS} ms per level ${LEVELS.join("/")}, soak ${SOAK_MS} ms, drains ${DRAIN_N}, ${DISPATCHERS} dispatchers, LOG_LEVEL=${LOG_LEVEL}`);
let table: string;
try {
  const raw = await startRawFloor(names.raw);
  floorsToClose.push(raw);
  const pc = await startPicloud();
  log(`picloud up on port ${pc.port}; warming up`);
  await floorPhase(raw.perRequest, 8, 1000);
  await floorPhase(raw.shared, 8, 1000);
  await httpPhase(pc.port, 8, 2000);

  for (let r = 1; r <= ROUNDS; r++) {
    for (const c of LEVELS) {
      const cpuFloor = c === CPU_AT ? raw.cpuGroups : undefined;
      push(results.floorPer, c, await floorPhase(raw.perRequest, c, PHASE_MS, cpuFloor));
      push(results.floorShared, c, await floorPhase(raw.shared, c, PHASE_MS, cpuFloor));
      push(results.sync, c, await httpPhase(pc.port, c, PHASE_MS, "/sync", c === CPU_AT ? pc.cpuGroups : undefined));
      const s = results.sync.get(c)!.at(-1)!.load, f = results.floorPer.get(c)!.at(-1)!.load;
      log(`round ${r} @${c}: picloud ${s.perSec.toFixed(0)} req/s p50 ${s.p50.toFixed(2)} ms (errors ${s.errors}); floor ${f.perSec.toFixed(0)} req/s p50 ${f.p50.toFixed(2)} ms`);
    }
  }

  log(`soak: 50 callers for ${SOAK_MS} ms`);
  const soak = (await httpPhase(pc.port, 50, SOAK_MS)).load;
  log(`soak: ${soak.n} requests, ${soak.errors} errors ${JSON.stringify(soak.statuses)}`);

  log(`graphile-worker: draining ${DRAIN_N} jobs`);
  const gw = await graphileDrain(names.gw, DRAIN_N);
  log(`graphile-worker: enqueued in ${gw.enqueueSeconds.toFixed(1)} s, drained in ${gw.seconds.toFixed(1)} s: ${gw.perSec.toFixed(0)} jobs/s`);

  // Async, enqueued first: the dispatchers are paused (SIGSTOP) while DRAIN_N requests are
  // accepted, then resumed together; the drain is timed from the resume, as graphile's is.
  const accept = httpClient(pc.port);
  const post = () => accept.request("POST", "/async", 202);
  for (const d of pc.dispatchers) d.child.kill("SIGSTOP");
  log(`async: accepting ${DRAIN_N} with the dispatchers paused`);
  const acceptPerSec = await fixedCount(ACCEPT_CALLERS, DRAIN_N, post).finally(() => pc.dispatchers.forEach((d) => d.child.kill("SIGCONT")));
  const resumed = performance.now();
  const drainedFirst = DRAIN_N / (((await outboxEmpty(pc.db)) - resumed) / 1000);
  log(`async: accepted ${acceptPerSec.toFixed(0)} req/s; drained ${drainedFirst.toFixed(0)} exec/s`);

  // Async, accepted while the dispatchers run: from the first POST until all have finished.
  const t0 = performance.now();
  const acceptBusy = await fixedCount(ACCEPT_CALLERS, DRAIN_N, post);
  const drainedBusy = DRAIN_N / (((await outboxEmpty(pc.db)) - t0) / 1000);
  accept.close();
  const succeeded = await succeededAsync(pc.db);
  log(`async: accepted ${acceptBusy.toFixed(0)} req/s while draining; all finished at ${drainedBusy.toFixed(0)} exec/s; ${succeeded} of ${2 * DRAIN_N} succeeded`);

  const rss = { ...pc.rss };
  await pc.close();
  table = render({ gw, acceptPerSec, drainedFirst, acceptBusy, drainedBusy, succeeded, soak, rss });
} finally {
  await cleanup();
}
console.log(table);
log(`done in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
process.exit(0);

// ---------- the table ----------
function render(x: {
  gw: { perSec: number };
  acceptPerSec: number;
  drainedFirst: number;
  acceptBusy: number;
  drainedBusy: number;
  succeeded: number;
  soak: Load;
  rss: { dispatcherMax: number; gatewayMax: number };
}): string {
  const f = (n: number | undefined, d = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : "-");
  const med = (m: Map<number, Phase[]>, c: number, k: "p50" | "p99" | "perSec") => median((m.get(c) ?? []).map((p) => p.load[k]));
  const medCpu = (m: Map<number, Phase[]>, key: string) => median((m.get(CPU_AT) ?? []).flatMap((p) => (p.cpu?.[key] === undefined ? [] : [p.cpu[key]!])));
  const sumCpu = (m: Map<number, Phase[]>) => median((m.get(CPU_AT) ?? []).flatMap((p) => (p.cpu ? [Object.values(p.cpu).reduce((a, b) => a + b, 0)] : [])));
  const rows: string[][] = [];
  const row = (metric: string, ours: string, floor: string, ratio: string, target = "", met = "") => rows.push([metric, ours, floor, ratio, target, met]);
  const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "-");
  const mark = (ok: boolean) => (ok ? "yes" : "**no**");

  for (const c of LEVELS) {
    const p50 = med(results.sync, c, "p50"), fp50 = med(results.floorPer, c, "p50");
    const p99 = med(results.sync, c, "p99"), fp99 = med(results.floorPer, c, "p99");
    row(`sync p50 ms @${c}`, f(p50, 2), f(fp50, 2), ratio(p50, fp50), c === 1 ? "≤ 3" : "", c === 1 ? mark(p50 <= 3) : "");
    row(`sync p99 ms @${c}`, f(p99, 2), f(fp99, 2), ratio(p99, fp99), c === 32 ? "≤ 50" : "", c === 32 ? mark(p99 <= 50) : "");
  }
  for (const c of [32, 50]) {
    const a = med(results.sync, c, "perSec"), b = med(results.floorPer, c, "perSec");
    row(`sync req/s @${c}`, f(a, 0), f(b, 0), ratio(a, b), c === 32 ? "≥ 1500" : "", c === 32 ? mark(a >= 1500) : "");
  }
  row(`sync errors @50 for ${SOAK_MS / 1000} s`, `${x.soak.errors} of ${x.soak.n}`, "-", "-", "0", mark(x.soak.errors === 0));
  row(`async drain exec/s, ${x.succeeded === 2 * DRAIN_N ? "" : "INCOMPLETE, "}${DRAIN_N} enqueued first, ${DISPATCHERS} dispatchers (floor: graphile-worker 2×10)`, f(x.drainedFirst, 0), f(x.gw.perSec, 0), ratio(x.drainedFirst, x.gw.perSec), "≥ floor", mark(x.drainedFirst >= x.gw.perSec));
  row(`async accept req/s @${ACCEPT_CALLERS} (dispatchers paused)`, f(x.acceptPerSec, 0), "-", "-");
  row(`async accepted while draining: first POST → all ${DRAIN_N} finished, exec/s`, f(x.drainedBusy, 0), f(x.gw.perSec, 0), ratio(x.drainedBusy, x.gw.perSec));
  row(`  accept req/s while draining`, f(x.acceptBusy, 0), "-", "-");
  row("dispatcher RSS MB, max over the run", f(x.rss.dispatcherMax, 0), "-", "-", "≤ 120", mark(x.rss.dispatcherMax <= 120));
  row("gateway RSS MB, max over the run", f(x.rss.gatewayMax, 0), "-", "-");
  const cpuOurs = sumCpu(results.sync), cpuFloor = sumCpu(results.floorPer);
  row(`CPU ms per sync request @${CPU_AT}, all processes`, f(cpuOurs, 2), f(cpuFloor, 2), ratio(cpuOurs, cpuFloor));
  row("  gateway | floor: client (bench process)", f(medCpu(results.sync, "gateway"), 2), f(medCpu(results.floorPer, "bench client"), 2), "-");
  row("  dispatchers | floor: worker", f(medCpu(results.sync, "dispatchers"), 2), f(medCpu(results.floorPer, "floor worker"), 2), "-");
  row("  Postgres backends", f(medCpu(results.sync, "postgres"), 2), f(medCpu(results.floorPer, "floor postgres"), 2), "-");
  row("  load client (bench process) | sweeper", `${f(medCpu(results.sync, "bench client"), 2)} / ${f(medCpu(results.sync, "sweeper"), 2)}`, "-", "-");
  rows.push(["**reply channel (raw floor)**", "**per-request**", "**shared**", "**shared ÷ per-request**", "", ""]);
  for (const c of LEVELS) {
    const a = med(results.floorPer, c, "p50"), b = med(results.floorShared, c, "p50");
    row(`  p50 ms @${c}`, f(a, 2), f(b, 2), ratio(b, a));
  }
  for (const c of [32, 50]) {
    const a = med(results.floorPer, c, "p99"), b = med(results.floorShared, c, "p99");
    row(`  p99 ms @${c}`, f(a, 2), f(b, 2), ratio(b, a));
  }
  for (const c of [8, 32, 50]) {
    const a = med(results.floorPer, c, "perSec"), b = med(results.floorShared, c, "perSec");
    row(`  req/s @${c}`, f(a, 0), f(b, 0), ratio(b, a));
  }
  const ca = sumCpu(results.floorPer), cb = sumCpu(results.floorShared);
  row(`  CPU ms per request @${CPU_AT}`, f(ca, 3), f(cb, 3), ratio(cb, ca));

  const head = `\nbench/spine ${QUICK ? "(QUICK) " : ""}— medians of ${ROUNDS} round(s) × ${PHASE_MS / 1000} s per level; floor for sync = raw pg request/reply with a per-request reply channel; async floor = graphile-worker 0.17.3, 2 processes × concurrency 10; ratio = picloud ÷ floor`;
  return [head, "| metric | picloud | floor | ratio | target | met |", "|---|---:|---:|---:|---|---|", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

