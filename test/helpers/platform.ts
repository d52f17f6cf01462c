// The real processes (gateway, dispatchers, sweeper) as children on a test database.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createDb, type Db } from "../../lib/db/pool.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { client, type Api } from "./http.ts";
import { freshDatabase } from "./db.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

export type Proc = { name: string; child: ChildProcess; output: () => string; exited: Promise<number | null> };
export type Platform = {
  url: string;
  dbUrl: string;
  db: Db;
  api: Api;
  procs: Proc[];
  start(name: "gateway" | "dispatcher" | "sweeper", env?: Record<string, string>): Promise<Proc>;
  stop(p: Proc, signal?: NodeJS.Signals): Promise<number | null>;
  output(): string;
  close(): Promise<void>;
};

/** Fast timings so slow paths (leases, heartbeats, retries) happen in test time. */
export const FAST_ENV = {
  LOG_LEVEL: "warn",
  PICLOUD_LEASE_MS: "3000",
  PICLOUD_HEARTBEAT_MS: "200",
  PICLOUD_POLL_INTERVAL_MS: "1000",
  PICLOUD_SWEEP_INTERVAL_MS: "250",
  PICLOUD_TRIGGER_RETRY_BASE_MS: "100",
  PICLOUD_SHUTDOWN_TIMEOUT_MS: "3000",
};

export async function startPlatform(opts: { dispatchers?: number; sweeper?: boolean; env?: Record<string, string>; dbUrl?: string } = {}): Promise<Platform> {
  const dbUrl = opts.dbUrl ?? (await freshDatabase()).url;
  if (opts.dbUrl) await migrate(dbUrl);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = { ...process.env, ...FAST_ENV, ...opts.env, DATABASE_URL: dbUrl, PICLOUD_PORT: String(port), PICLOUD_HOST: "127.0.0.1" };
  const procs: Proc[] = [];
  const url = `http://127.0.0.1:${port}`;

  const start = async (name: "gateway" | "dispatcher" | "sweeper", extra: Record<string, string> = {}): Promise<Proc> => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, `services/${name}/main.ts`)], { cwd: root, env: { ...env, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const p: Proc = { name, child, output: () => out, exited };
    procs.push(p);
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited early (${child.exitCode}):\n${out}`);
      if (name === "gateway") return (await fetch(`${url}/readyz`).catch(() => null))?.status === 200;
      if (name === "dispatcher") return out.includes("dispatcher started");
      return out.includes("sweeper started");
    }, 30_000);
    return p;
  };

  const gatewayEnv = { LOG_LEVEL: "info" };
  await start("gateway", gatewayEnv);
  for (let i = 0; i < (opts.dispatchers ?? 2); i++) await start("dispatcher", { LOG_LEVEL: "info" });
  if (opts.sweeper ?? true) await start("sweeper", { LOG_LEVEL: "info" });
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
