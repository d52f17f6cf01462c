// bench/spine: the execution spine on loopback, each figure beside a floor measured in the
// same run. One command, one table:  node --import tsx bench/spine.ts   (BENCH_QUICK=1: short)
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { migrate } from "../lib/db/migrate.ts";
import { sql } from "../lib/db/pool.ts";
import { alive, startPlatform, type Platform } from "../test/helpers/platform.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const QUICK = process.env.BENCH_QUICK === "1";
const PHASE_MS = QUICK ? 2000 : 5000;
const DRAIN_N = QUICK ? 2000 : 20000;
const SOAK_MS = QUICK ? 5000 : 30000;
const base = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test";

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const dbUrl = (name: string) => Object.assign(new URL(base), { pathname: `/${name}` }).toString();
async function freshDb(name: string): Promise<string> {
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return dbUrl(name);
}
async function dropDb(name: string): Promise<void> {
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
}
const forkReady = (file: string, env: Record<string, string>) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = fork(path.join(here, file), { execArgv: ["--import", "tsx"], env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", () => resolve(child));
    child.once("exit", (code) => reject(new Error(`${file} exited ${code}`)));
  });

type Load = { p50: number; p99: number; perSec: number; errors: number; n: number };

/** Closed-loop load: `callers` each send the next request when the last one answered. */
async function closedLoop(callers: number, ms: number, once: () => Promise<boolean>): Promise<Load> {
  const lat: number[] = [];
  let errors = 0;
  const until = performance.now() + ms;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        const ok = await once().catch(() => false);
        lat.push(performance.now() - t);
        if (!ok) errors++;
      }
    }),
  );
  return { p50: pct(lat, 50), p99: pct(lat, 99), perSec: lat.length / ((performance.now() - started) / 1000), errors, n: lat.length };
}

// ---------- floor 1: raw pg request/reply ----------
async function rawFloor(): Promise<Record<string, Load>> {
  const url = await freshDb("picloud_bench_raw");
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query("CREATE TABLE rr (id bigserial PRIMARY KEY, reply_to text NOT NULL, claimed boolean NOT NULL DEFAULT false)");
  await setup.end();
  const worker = await forkReady("floors/raw-worker.ts", { DATABASE_URL: url });
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  const waiting = new Map<string, () => void>();
  listener.on("notification", (n) => {
    const key = n.channel === "rr_shared" ? n.payload! : n.channel;
    waiting.get(key)?.();
    waiting.delete(key);
  });
  await listener.query("LISTEN rr_shared");
  let seq = 0;
  const perRequest = async () => {
    const channel = `rr_r${seq++}`;
    const got = new Promise<void>((r) => waiting.set(channel, r));
    await listener.query(`LISTEN ${channel}`);
    await pool.query("WITH i AS (INSERT INTO rr (reply_to) VALUES ($1)) SELECT pg_notify('rr_new', '')", [channel]);
    await got;
    void listener.query(`UNLISTEN ${channel}`);
    return true;
  };
  const shared = async () => {
    // the row id is known only after the insert: reserve it first
    const { rows } = await pool.query<{ id: string }>("SELECT nextval('rr_id_seq')::text AS id");
    const id = rows[0]!.id;
    const got = new Promise<void>((r) => waiting.set(id, r));
    await pool.query("WITH i AS (INSERT INTO rr (id, reply_to) VALUES ($1, 'rr_shared')) SELECT pg_notify('rr_new', '')", [id]);
    await got;
    return true;
  };
  const out: Record<string, Load> = {};
  await closedLoop(8, 500, perRequest);
  for (const c of [1, 8, 32, 50]) out[`per-request ${c}`] = await closedLoop(c, PHASE_MS, perRequest);
  for (const c of [1, 32]) out[`shared ${c}`] = await closedLoop(c, PHASE_MS, shared);
  worker.kill("SIGTERM");
  await listener.end();
  await pool.end();
  await dropDb("picloud_bench_raw");
  return out;
}

// ---------- floor 2: graphile-worker drain ----------
async function graphileFloor(): Promise<number> {
  const url = await freshDb("picloud_bench_gw");
  const { runMigrations } = await import("graphile-worker");
  await runMigrations({ connectionString: url });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`SELECT graphile_worker.add_job('noop', '{}'::json) FROM generate_series(1, ${DRAIN_N})`);
  const started = performance.now();
  const workers = await Promise.all([0, 1].map(() => forkReady("floors/graphile-worker.ts", { DATABASE_URL: url })));
  for (;;) {
    const { rows } = await c.query<{ n: string }>("SELECT count(*) AS n FROM graphile_worker.jobs");
    if (Number(rows[0]!.n) === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const rate = DRAIN_N / ((performance.now() - started) / 1000);
  for (const w of workers) w.kill("SIGTERM");
  await c.end();
  await dropDb("picloud_bench_gw");
  return rate;
}

// ---------- picloud ----------
async function picloud(): Promise<{ sync: Record<string, Load>; soak: Load; drain: number; enqueue: number; rssMb: number }> {
  const url = await freshDb("picloud_bench_spine");
  await migrate(url);
  const p: Platform = await startPlatform({
    dbUrl: url,
    dispatchers: 2,
    env: { LOG_LEVEL: "warn", PICLOUD_HEARTBEAT_MS: "2000", PICLOUD_POLL_INTERVAL_MS: "5000", PICLOUD_SWEEP_INTERVAL_MS: "5000", PICLOUD_LEASE_MS: "30000", PICLOUD_MAX_BACKLOG: "1000000" },
  });
  const token = (await p.api().post("/api/v1/admin/bootstrap", { email: "bench@example.com", password: "bench-password" })).body.token;
  const api = p.api(token);
  await api.post("/api/v1/admin/apps", { slug: "bench", name: "Bench" });
  for (const [name, mode] of [["sync", "sync"], ["async", "async"]] as const) {
    const s = await api.post("/api/v1/admin/apps/bench/scripts", { name, source: "export default () => ({ ok: true })" });
    await api.post(`/api/v1/admin/scripts/${s.body.id}/routes`, { path: `/${name}`, dispatch_mode: mode });
  }
  const { port } = new URL(p.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const request = (method: string, route: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path: route, agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      });
      req.on("error", reject);
      req.end();
    });
  const syncOnce = async () => (await request("GET", "/sync")) === 200;
  const sync: Record<string, Load> = {};
  await closedLoop(8, 1000, syncOnce);
  for (const c of [1, 8, 32, 50]) sync[`${c}`] = await closedLoop(c, PHASE_MS, syncOnce);
  const soak = await closedLoop(50, SOAK_MS, syncOnce);

  // async drain: DRAIN_N accepted executions, time until all finished
  const dispatchers = p.procs.filter((x) => x.name === "dispatcher" && alive(x));
  let rssMb = 0;
  const sampler = setInterval(() => {
    for (const d of dispatchers) {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.child.pid}/status`, "utf8"));
      if (m) rssMb = Math.max(rssMb, Number(m[1]) / 1024);
    }
  }, 200);
  const started = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (sent++ < DRAIN_N) if ((await request("POST", "/async")) !== 202) throw new Error("async not accepted");
    }),
  );
  const enqueue = DRAIN_N / ((performance.now() - started) / 1000);
  for (;;) {
    const n = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE kind = 'http_async'`));
    if (n >= DRAIN_N) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const drain = DRAIN_N / ((performance.now() - started) / 1000);
  clearInterval(sampler);
  agent.destroy();
  await p.close();
  await dropDb("picloud_bench_spine");
  return { sync, soak, drain, enqueue, rssMb };
}

const raw = await rawFloor();
const gw = await graphileFloor();
const ours = await picloud();

const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
const rows: string[][] = [];
const row = (metric: string, value: string, floor: string, ratio: string, target: string) => rows.push([metric, value, floor, ratio, target]);
for (const c of ["1", "8", "32"]) {
  const a = ours.sync[c]!, b = raw[`per-request ${c}`]!;
  row(`sync p50 ms @${c}`, f(a.p50, 2), f(b.p50, 2), `${f(a.p50 / b.p50, 2)}×`, c === "1" ? "≤ 3" : "");
  row(`sync p99 ms @${c}`, f(a.p99, 2), f(b.p99, 2), `${f(a.p99 / b.p99, 2)}×`, c === "32" ? "≤ 50" : "");
}
for (const c of ["32", "50"]) {
  const a = ours.sync[c]!, b = raw[`per-request ${c}`]!;
  row(`sync req/s @${c}`, f(a.perSec, 0), f(b.perSec, 0), `${f(a.perSec / b.perSec, 2)}×`, c === "32" ? "≥ 1500" : "");
}
row(`errors @50 for ${SOAK_MS / 1000} s`, `${ours.soak.errors} of ${ours.soak.n}`, "-", "-", "0");
row(`async drain exec/s (${DRAIN_N}, 2 dispatchers)`, f(ours.drain, 0), f(gw, 0), `${f(ours.drain / gw, 2)}×`, "≥ graphile-worker");
row("async accept req/s (32 callers)", f(ours.enqueue, 0), "-", "-", "");
row("dispatcher RSS MB (max)", f(ours.rssMb, 0), "-", "-", "≤ 120");
row("reply channel: per-request p50 @1 / @32", `${f(raw["per-request 1"]!.p50, 2)} / ${f(raw["per-request 32"]!.p50, 2)}`, `shared: ${f(raw["shared 1"]!.p50, 2)} / ${f(raw["shared 32"]!.p50, 2)}`, "-", "");
row("reply channel: per-request req/s @32", f(raw["per-request 32"]!.perSec, 0), `shared: ${f(raw["shared 32"]!.perSec, 0)}`, `${f(raw["per-request 32"]!.perSec / raw["shared 32"]!.perSec, 2)}×`, "");

console.log(`\nbench/spine ${QUICK ? "(quick) " : ""}— floors: raw pg request/reply (per-request channel) and graphile-worker 0.17.3 (2 processes × 10)`);
console.log("| metric | picloud | floor | ratio | target |");
console.log("|---|---:|---:|---:|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
process.exit(0);
