// Shared pieces of the benchmarks: scratch databases, closed-loop load, percentiles and medians,
// CPU time and RSS read from /proc, and the picloud processes started as children.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { buildOnce } from "../../lib/build.ts";
import { BUNDLE_NODE_ARGS, bundlePath } from "../../lib/layout.ts";

export const root = fileURLToPath(new URL("../..", import.meta.url));
export const base = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/postgres";
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const envInt = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw}: expected a non-negative number`);
  return n;
};

// ---------- numbers ----------
export const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
export const median = (xs: number[]) => pct(xs, 50);

// ---------- scratch databases (picloud_bench_*, dropped at the end) ----------
const created = new Set<string>();
export const dbUrl = (name: string) => Object.assign(new URL(base), { pathname: `/${name}` }).toString();
async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
export async function freshDb(name: string): Promise<string> {
  if (!/^picloud_bench_[a-z0-9_]+$/.test(name)) throw new Error(`bench databases are named picloud_bench_*: ${name}`);
  created.add(name);
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  return dbUrl(name);
}
export async function dropDb(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  created.delete(name);
}
export async function dropAll(): Promise<void> {
  for (const name of [...created]) await dropDb(name).catch(() => undefined);
}
/** Backend pids connected to a database (their CPU time is Postgres's share of the work). */
export async function backendPids(name: string): Promise<number[]> {
  return admin(async (c) => (await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [name])).rows.map((r) => r.pid));
}

// ---------- /proc ----------
/** CPU time (user + system) of a process in ms, all its threads included; 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return 0;
  }
}
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
/** CPU ms spent by named groups of processes between two snapshots. */
export type CpuGroups = Record<string, () => number[] | Promise<number[]>>;
export async function cpuSnapshot(groups: CpuGroups): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  for (const [name, pids] of Object.entries(groups)) out.set(name, new Map((await pids()).map((p) => [p, cpuMs(p)])));
  return out;
}
/** Per group: CPU ms used since `before` by the processes present at both ends. */
export async function cpuSince(before: Map<string, Map<number, number>>, groups: CpuGroups): Promise<Record<string, number>> {
  const after = await cpuSnapshot(groups);
  const out: Record<string, number> = {};
  for (const [name, pids] of after) {
    let sum = 0;
    for (const [pid, t] of pids) sum += t - (before.get(name)?.get(pid) ?? t);
    out[name] = sum;
  }
  return out;
}

// ---------- load ----------
export type Load = { p50: number; p99: number; perSec: number; errors: number; n: number; statuses: Record<string, number> };

/** Closed loop: `callers` each send the next request as soon as the last one is answered. */
export async function closedLoop(callers: number, ms: number, once: () => Promise<string | true>): Promise<Load> {
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const until = started + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        const r = await once().catch((err: Error) => `error: ${err.message}`);
        lat.push(performance.now() - t);
        if (r !== true) {
          errors++;
          statuses[r] = (statuses[r] ?? 0) + 1;
        }
      }
    }),
  );
  return { p50: pct(lat, 50), p99: pct(lat, 99), perSec: lat.length / ((performance.now() - started) / 1000), errors, n: lat.length, statuses };
}

/** Runs `total` calls with `callers` at a time; returns the calls per second. Throws on the first failure. */
export async function fixedCount(callers: number, total: number, once: () => Promise<string | true>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next++ < total) {
        const r = await once();
        if (r !== true) throw new Error(`call failed: ${r}`);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

/** Keep-alive HTTP on loopback; each phase takes a fresh agent (no socket the server closed while idle). */
export function httpClient(port: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const request = (method: string, route: string, want: number) =>
    new Promise<string | true>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path: route, agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode === want ? true : `HTTP ${res.statusCode}`));
      });
      req.on("error", reject);
      req.end();
    });
  return { request, close: () => agent.destroy() };
}

// ---------- picloud processes ----------
export type Service = "gateway" | "dispatcher" | "sweeper";
export type Child = { name: Service; child: ChildProcess; pid: number; tail: () => string };
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/**
 * Starts a service as users run it (`node --enable-source-maps dist/<name>.js`, built once per
 * bench run) and resolves once it says "ready" (IPC). `nodeArgs` (e.g. --cpu-prof) go before the file.
 */
export async function startService(name: Service, env: Record<string, string>, nodeArgs: string[] = []): Promise<Child> {
  await buildOnce();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...BUNDLE_NODE_ARGS, ...nodeArgs, bundlePath(name)], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    children.add(child);
    let out = "";
    const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const me: Child = { name, child, pid: child.pid!, tail: () => out };
    child.on("message", (m) => {
      if (m !== "ready") return;
      child.disconnect();
      resolve(me);
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
}

/** SIGTERM (a graceful stop writes --cpu-prof profiles), SIGKILL past `boundMs`. */
export async function stopService(c: Child, boundMs = 15_000): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise((r) => c.child.once("exit", r));
  c.child.kill("SIGCONT");
  c.child.kill("SIGTERM");
  const timer = setTimeout(() => c.child.kill("SIGKILL"), boundMs);
  await exited;
  clearTimeout(timer);
}

/** Forks a bench-side helper (bench/floors/*.ts) and resolves once it says "ready". */
export function forkReady(file: string, env: Record<string, string>): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "bench", file)], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.add(child);
    child.once("message", () => {
      child.disconnect();
      resolve(child);
    });
    child.once("exit", (code) => {
      children.delete(child);
      reject(new Error(`${file} exited ${code}`));
    });
  });
}
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
