// The README's promise: with no DATABASE_URL, `npm start` brings up an embedded Postgres, the
// migrations, and the gateway + dispatchers + sweeper under pm2; data survives a restart.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const root = fileURLToPath(new URL("..", import.meta.url));

// `npm start` itself (npm's own CLI when the tests run under npm), in a process group of its own
// so that what it leaves behind can be seen.
function npmStart(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const base = { ...process.env };
  delete base.DATABASE_URL;
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm?.endsWith(".js") ? [process.execPath, [npm, "start"]] : ["npm", ["start"]];
  const child = spawn(cmd, args, { cwd: root, env: { ...base, ...env, LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  return { child, output: () => out };
}

async function waitReady(url: string, timeoutMs: number, output: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`platform not ready after ${timeoutMs} ms:\n${output()}`);
}

/**
 * SIGTERM to npm's process alone (as a script or a service manager would send it, not Ctrl-C to
 * the whole group): the platform must stop and npm exit with the launcher's code, leaving no
 * process of its group behind (the launcher, pm2-runtime, the embedded Postgres; pm2 starts each
 * service in a group of its own, so the callers also check that the gateway's port is closed).
 */
async function stop(child: ChildProcess): Promise<{ code: number | null; leftBehind: boolean }> {
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGTERM");
  const code = await exited;
  let leftBehind = true;
  for (let i = 0; i < 50 && leftBehind; i++) {
    try {
      process.kill(-child.pid!, 0);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      leftBehind = false;
    }
  }
  return { code, leftBehind };
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    /* already gone */
  }
}

const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

test("npm start with no DATABASE_URL serves the API from an embedded Postgres, and keeps data across restarts", async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "picloud-start-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = 18000 + Math.floor(Math.random() * 1000);
  const env = {
    PICLOUD_DATA_DIR: dataDir,
    PICLOUD_PORT: String(port),
    PICLOUD_EMBEDDED_PG_PORT: String(port + 1000),
    PICLOUD_DISPATCHERS: "1",
    PICLOUD_SHUTDOWN_TIMEOUT_MS: "3000",
  };
  const url = `http://127.0.0.1:${port}`;

  const first = npmStart(env);
  t.teardown(() => killGroup(first.child));
  await waitReady(url, 90_000, first.output);

  const boot = await fetch(`${url}/api/v1/admin/bootstrap`, json({ email: "owner@example.com", password: "correct horse" }));
  t.is(boot.status, 201);
  const { token } = (await boot.json()) as { token: string };
  const auth = (init: RequestInit & { headers?: Record<string, string> }) => ({ ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
  t.is((await fetch(`${url}/api/v1/admin/apps`, auth(json({ slug: "demo", name: "Demo" })))).status, 201);
  const script = await fetch(`${url}/api/v1/admin/apps/demo/scripts`, auth(json({ name: "hello", source: "export default (ctx) => ({ hello: ctx.request.query.name })" })));
  t.is(script.status, 201);
  const { id: scriptId } = (await script.json()) as { id: string };
  t.is((await fetch(`${url}/api/v1/admin/scripts/${scriptId}/routes`, auth(json({ host_kind: "any", path_kind: "exact", path: "/hello" })))).status, 201);

  const direct = await fetch(`${url}/api/v1/execute/${scriptId}`, auth(json({ request: { method: "GET", path: "/hello", query: { name: "direct" } } })));
  t.is(direct.status, 200);
  t.like(await direct.json(), { status: "succeeded", response: { status: 200 } });

  const routed = await fetch(`${url}/hello?name=pi`);
  t.is(routed.status, 200);
  t.deepEqual(await routed.json(), { hello: "pi" });

  t.deepEqual(await stop(first.child), { code: 0, leftBehind: false }, first.output());
  t.false(await fetch(`${url}/readyz`).then(() => true, () => false), "the gateway stopped");

  // Second start: same data folder, the owner is still there.
  const second = npmStart(env);
  t.teardown(() => killGroup(second.child));
  await waitReady(url, 60_000, second.output);
  const login = await fetch(`${url}/api/v1/admin/login`, json({ email: "owner@example.com", password: "correct horse" }));
  t.is(login.status, 200);
  t.is((await fetch(`${url}/api/v1/admin/bootstrap`, json({ email: "x@example.com", password: "correct horse" }))).status, 409);
  t.deepEqual(await stop(second.child), { code: 0, leftBehind: false }, second.output());
  t.false(await fetch(`${url}/readyz`).then(() => true, () => false), "the gateway stopped");
});
