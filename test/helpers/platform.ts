// The real processes (gateway, dispatchers, sweeper) as children on a test database, with fast
// timings: start more, stop one with a signal (SIGKILL for a crash), restart it, stop them all.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { buildOnce } from "../../lib/build.ts";
import { createDb, type Db } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { BUNDLE_NODE_ARGS, bundlePath, ROOT } from "../../lib/layout.ts";
import { client, type Api } from "./http.ts";
import { freshDatabase } from "./db.ts";

/**
 * The processes run from the bundles users run (dist/, what pm2 starts). test/run.ts builds them
 * once for the whole run; a test file run by ava directly builds them itself (once per file).
 */
export const ensureBuilt = (): Promise<unknown> => (process.env.PICLOUD_TEST_BUILT === "1" ? Promise.resolve() : buildOnce());

export type ProcName = "gateway" | "dispatcher" | "sweeper";
export type Proc = {
  name: ProcName;
  child: ChildProcess;
  env: Record<string, string>;
  output: () => string;
  exited: Promise<number | null>;
  /** A gateway's own address (a second gateway gets its own port: start("gateway", { PICLOUD_PORT })). */
  url?: string;
  /** Where the process serves /metrics (gateways always; the others with startPlatform({ metrics: true })). */
  metricsUrl?: string;
};
export type Platform = {
  url: string;
  dbUrl: string;
  db: Db;
  api: Api;
  /** Every process started, the exited ones included (see `alive`). */
  procs: Proc[];
  /** Starts one more process (its env over the platform's); resolves once it is ready. */
  start(name: ProcName, env?: Record<string, string>): Promise<Proc>;
  /** Signals a process (SIGTERM by default; SIGKILL for a crash) and resolves with its exit code. */
  stop(p: Proc, signal?: NodeJS.Signals): Promise<number | null>;
  /** stop, then start the same kind of process with the same env. */
  restart(p: Proc, signal?: NodeJS.Signals): Promise<Proc>;
  /** The live processes of one kind. */
  running(name: ProcName): Proc[];
  /** The process with this pid (e.g. from the dispatchers table). */
  byPid(pid: number): Proc | undefined;
  output(): string;
  close(): Promise<void>;
};

/** Fast timings so slow paths (leases, heartbeats, retries) happen in test time. */
export const FAST_ENV = {
  LOG_LEVEL: "info",
  PICLOUD_LEASE_MS: "3000",
  PICLOUD_HEARTBEAT_MS: "200",
  PICLOUD_POLL_INTERVAL_MS: "1000",
  PICLOUD_SWEEP_INTERVAL_MS: "250",
  PICLOUD_TRIGGER_RETRY_BASE_MS: "100",
  PICLOUD_SHUTDOWN_TIMEOUT_MS: "3000",
};

export async function startPlatform(opts: { dispatchers?: number; sweeper?: boolean; env?: Record<string, string>; dbUrl?: string; metrics?: boolean } = {}): Promise<Platform> {
  await ensureBuilt();
  const dbUrl = opts.dbUrl ?? (await freshDatabase()).url;
  if (opts.dbUrl) await migrate(dbUrl);
  const port = await freePort();
  const env = { ...process.env, ...FAST_ENV, ...opts.env, DATABASE_URL: dbUrl, PICLOUD_PORT: String(port), PICLOUD_HOST: "127.0.0.1" };
  const procs: Proc[] = [];
  const url = `http://127.0.0.1:${port}`;

  const start = async (name: ProcName, extra: Record<string, string> = {}): Promise<Proc> => {
    if (opts.metrics && name !== "gateway" && extra.PICLOUD_METRICS_PORT === undefined) {
      // Kept in the proc's env, so a restart serves on the same port. A dispatcher serves on base + 1 + instance (0 here).
      const port = await freePort();
      extra = { ...extra, PICLOUD_METRICS_PORT: String(name === "dispatcher" ? port - 1 : port) };
    }
    const own = name === "gateway" ? `http://127.0.0.1:${extra.PICLOUD_PORT ?? port}` : undefined;
    const metricsPort = name === "gateway" ? undefined : Number(extra.PICLOUD_METRICS_PORT ?? 0) + (name === "dispatcher" ? 1 : 0);
    const child = spawn(process.execPath, [...BUNDLE_NODE_ARGS, bundlePath(name)], { cwd: ROOT, env: { ...env, ...extra }, stdio: ["ignore", "pipe", "pipe", "ipc"] });
    // Each main.ts says process.send("ready") (pm2's wait_ready) once it is up.
    let ready = false;
    child.on("message", (m) => {
      if (m !== "ready") return;
      ready = true;
      child.disconnect();
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const p: Proc = { name, child, env: extra, output: () => out, exited };
    if (own) p.url = own;
    p.metricsUrl = own ? `${own}/metrics` : metricsPort ? `http://127.0.0.1:${metricsPort}/metrics` : undefined;
    procs.push(p);
    await waitUntil(async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited early (${child.exitCode ?? child.signalCode}):\n${out}`);
      return ready && (!own || (await fetch(`${own}/readyz`).catch(() => null))?.status === 200);
    }, 30_000);
    return p;
  };

  try {
    await start("gateway");
    await Promise.all(Array.from({ length: opts.dispatchers ?? 2 }, () => start("dispatcher")));
    if (opts.sweeper ?? true) await start("sweeper");
  } catch (err) {
    // A process that did not come up in time must not take the others with it into orphanhood.
    for (const p of procs) if (alive(p)) p.child.kill("SIGKILL");
    throw err;
  }
  const db = await createDb(dbUrl, { maximumPoolSize: 4 });

  const stop = async (p: Proc, signal: NodeJS.Signals = "SIGTERM") => {
    if (alive(p)) p.child.kill(signal);
    return p.exited;
  };
  return {
    url,
    dbUrl,
    db,
    api: client(url),
    procs,
    start,
    stop,
    restart: async (p, signal = "SIGTERM") => {
      await stop(p, signal);
      return start(p.name, p.env);
    },
    running: (name) => procs.filter((p) => p.name === name && alive(p)),
    byPid: (pid) => procs.find((p) => p.child.pid === pid),
    output: () => procs.map((p) => `--- ${p.name} ---\n${p.output()}`).join("\n"),
    async close() {
      await Promise.all(procs.map((p) => stop(p, "SIGKILL")));
      await db.end();
    },
  };
}

export const alive = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;

export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A port the OS just handed out (and took back): free for the gateway to bind. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
