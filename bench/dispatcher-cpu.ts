// bench/dispatcher-cpu: CPU per sync execution, split by process and by whose Postgres backend
// did the work, at a fixed closed-loop concurrency, beside the raw-pg floor in the same rounds.
// Narrower and steadier than bench/spine (one level, longer phases, interleaved rounds): for A/B
// of the dispatcher's hot path.      node --import tsx bench/dispatcher-cpu.ts
//
// Postgres time is attributed by application_name (PGAPPNAME, which pg reads): each picloud
// process gets its own, so "postgres: dispatchers" is the backends' CPU spent on the
// dispatchers' statements (claim, complete, heartbeat, LISTEN).
// Knobs: BENCH_ROUNDS (5), BENCH_PHASE_MS (4000), BENCH_CALLERS (32), BENCH_DISPATCHERS (2),
// BENCH_LOG_LEVEL (warn; "info" adds the per-execution log line), BENCH_PROF=<dir> (--cpu-prof
// for the dispatchers).
import { readFileSync } from "node:fs";
import { loadavg as loadavgNow } from "node:os";
import { createServer } from "node:net";
import pg from "pg";
import { migrate } from "../lib/db/migrate.ts";
import { startRawFloor } from "./floors/raw.ts";
import { deployBenchRoutes } from "./lib/deploy.ts";
import { base, closedLoop, cpuSince, cpuSnapshot, dropAll, envInt, freshDb, httpClient, median, startService, stopService, type Child, type CpuGroups } from "./lib/harness.ts";

const ROUNDS = envInt("BENCH_ROUNDS", 5);
const PHASE_MS = envInt("BENCH_PHASE_MS", 4000);
const CALLERS = envInt("BENCH_CALLERS", 32);
const DISPATCHERS = envInt("BENCH_DISPATCHERS", 2);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? "warn";
const PROF = process.env.BENCH_PROF;
const names = { raw: `picloud_bench_draw_${process.pid}`, spine: `picloud_bench_dcpu_${process.pid}` };
const log = (msg: string) => process.stderr.write(`[bench/dispatcher-cpu ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Backend pids of `db` whose application_name starts with `prefix`; `listener`: only the LISTEN
 * connection's (its last statement is pg-listen's: a LISTEN, its paranoid check, or its pid query), or all but it.
 */
async function backends(admin: pg.Client, prefix: string, listener?: boolean): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number; listens: boolean }>(
    "SELECT pid, query ILIKE 'LISTEN %' OR query IN ('SELECT 1', 'SELECT pg_backend_pid()') AS listens FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2",
    [names.spine, `${prefix}%`],
  );
  return rows.filter((r) => listener === undefined || r.listens === listener).map((r) => r.pid);
}

/** CPU ms of one thread (the main thread's tid is the pid); 0 once it is gone. */
function threadCpuMs(pid: number, tid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/**
 * Open loop at `rate` requests/s (at most `cap` in flight): unlike a closed loop, the work per
 * second, and so the dispatchers' batch sizes, stays the same whatever else loads the machine,
 * so CPU per request compares across runs (BENCH_RATE; 0 = closed loop with CALLERS).
 */
async function fixedRate(rate: number, cap: number, ms: number, once: () => Promise<string | true>): Promise<{ n: number; perSec: number; errors: number }> {
  let sent = 0, inFlight = 0, done = 0, errors = 0;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  while (performance.now() - started < ms) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (sent < due && inFlight < cap) {
      sent++;
      inFlight++;
      pending.push(once().then((r) => void (r === true || errors++), () => void errors++).finally(() => (inFlight--, done++)));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  return { n: done, perSec: done / ((performance.now() - started) / 1000), errors };
}
const RATE = envInt("BENCH_RATE", 0);
const load = (once: () => Promise<string | true>) => (RATE ? fixedRate(RATE, CALLERS, PHASE_MS, once) : closedLoop(CALLERS, PHASE_MS, once));

const services: Child[] = [];
const out: { ours: Record<string, number>[]; floor: Record<string, number>[]; rate: number[]; floorRate: number[] } = { ours: [], floor: [], rate: [], floorRate: [] };
function report(): void {
  const f = (n: number, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  const med = (xs: Record<string, number>[], k: string) => median(xs.map((x) => x[k]!));
  // The main threads' line is a part of "dispatchers", not an addend.
  const sum = (xs: Record<string, number>[]) => median(xs.map((x) => Object.entries(x).reduce((a, [k, v]) => (k.includes("main threads") ? a : a + v), 0)));
  const loadavg = loadavgNow().map((l) => l.toFixed(1)).join(" ");
  console.log(`\nbench/dispatcher-cpu — medians of ${ROUNDS} rounds × ${PHASE_MS / 1000} s ${RATE ? `at ${RATE} req/s (≤ ${CALLERS} in flight)` : `@${CALLERS} callers`}, ${DISPATCHERS} dispatchers, LOG_LEVEL=${LOG_LEVEL}; load average ${loadavg}`);
  console.log("| metric | picloud | floor (raw pg) | ratio |\n|---|---:|---:|---:|");
  const rate = median(out.rate), floorRate = median(out.floorRate);
  console.log(`| sync req/s | ${f(rate, 0)} | ${f(floorRate, 0)} | ${f(rate / floorRate, 2)}× |`);
  const all = sum(out.ours), allFloor = sum(out.floor);
  console.log(`| CPU ms per request, all | ${f(all)} | ${f(allFloor)} | ${f(all / allFloor, 2)}× |`);
  for (const k of Object.keys(out.ours[0] ?? {})) console.log(`| ${k} | ${f(med(out.ours, k))} | | |`);
  for (const k of Object.keys(out.floor[0] ?? {})) console.log(`| floor: ${k} | | ${f(med(out.floor, k))} | |`);
}

const raw = await startRawFloor(names.raw);
const admin = new pg.Client({ connectionString: base });
await admin.connect();
try {
  const url = await freshDb(names.spine);
  await migrate(url);
  const port = await freePort();
  const env = { DATABASE_URL: url, PICLOUD_PORT: String(port), PICLOUD_HOST: "127.0.0.1", LOG_LEVEL };
  const gateway = await startService("gateway", { ...env, PGAPPNAME: "bench-gateway" });
  services.push(gateway);
  const dispatchers: Child[] = [];
  for (let i = 0; i < DISPATCHERS; i++) {
    const args = PROF ? ["--cpu-prof", `--cpu-prof-dir=${PROF}/dispatcher-${i + 1}`] : [];
    dispatchers.push(await startService("dispatcher", { ...env, PGAPPNAME: `bench-dispatcher-${i + 1}` }, args));
  }
  services.push(...dispatchers);
  const sweeper = await startService("sweeper", { ...env, PGAPPNAME: "bench-sweeper" });
  services.push(sweeper);

  await deployBenchRoutes(port, ["sync"]);

  const groups: CpuGroups = {
    gateway: () => [gateway.pid],
    dispatchers: () => dispatchers.map((d) => d.pid),
    sweeper: () => [sweeper.pid],
    "postgres: gateway": () => backends(admin, "bench-gateway"),
    "postgres: dispatchers, statements": () => backends(admin, "bench-dispatcher", false),
    "postgres: dispatchers, listeners": () => backends(admin, "bench-dispatcher", true),
    "postgres: sweeper": () => backends(admin, "bench-sweeper"),
  };
  const http = httpClient(port);
  await closedLoop(CALLERS, 2000, () => http.request("GET", "/sync", 200)); // warm: JIT, pools, caches
  await closedLoop(CALLERS, 1000, raw.perRequest);
  for (let r = 1; r <= ROUNDS; r++) {
    let before = await cpuSnapshot(raw.cpuGroups);
    const f = await load(raw.perRequest);
    const fc = await cpuSince(before, raw.cpuGroups);
    out.floor.push(Object.fromEntries(Object.entries(fc).map(([k, v]) => [k, v / f.n])));
    out.floorRate.push(f.perSec);
    const mains = () => dispatchers.reduce((t, d) => t + threadCpuMs(d.pid, d.pid), 0);
    before = await cpuSnapshot(groups);
    const mainBefore = mains();
    const p = await load(() => http.request("GET", "/sync", 200));
    const pc: Record<string, number> = { ...(await cpuSince(before, groups)), "dispatchers: main threads": mains() - mainBefore };
    out.ours.push(Object.fromEntries(Object.entries(pc).map(([k, v]) => [k, v / p.n])));
    out.rate.push(p.perSec);
    log(`round ${r}: picloud ${p.perSec.toFixed(0)} req/s (errors ${p.errors}), dispatchers ${(pc.dispatchers! / p.n).toFixed(3)} ms/req; floor ${f.perSec.toFixed(0)} req/s`);
  }
  http.close();
  // How the statements reach outbox rows (a sequential scan per completion would grow with the table).
  const stats = new pg.Client({ connectionString: url });
  await stats.connect();
  const { rows } = await stats.query("SELECT relname, pg_relation_size(relid) / 8192 AS pages, seq_scan, seq_tup_read, idx_scan, n_live_tup, n_dead_tup, vacuum_count, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables WHERE relname IN ('outbox', 'executions')");
  await stats.end();
  for (const r of rows) log(`table ${JSON.stringify(r)}`);
  // Before cleaning up: dropping the floor's database can end this process (a pool's idle client).
  report();
} finally {
  await Promise.all(services.map((c) => stopService(c).catch(() => undefined)));
  await raw.close().catch(() => undefined);
  await admin.end();
  await dropAll();
}

process.exit(0);
