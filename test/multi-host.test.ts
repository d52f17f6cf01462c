// Several hosts sharing one Postgres: 2 gateways, 3 dispatchers and a sweeper as separate
// processes. Sync requests alternate between the gateways and each caller gets its own
// request's answer (the script echoes a per-request value); the work spreads over all three
// dispatchers (each one's picloud_executions_total). And ecosystem.config.cjs builds each host's
// process list from PICLOUD_ROLES and PICLOUD_DISPATCHERS.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { BUNDLE_NODE_ARGS, bundlePath } from "../lib/layout.ts";
import { freePort, startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";
import { scrape } from "./helpers/prom.ts";

const V1 = "/api/v1/admin";
const SYNC = 120;
const ASYNC = 60;
let p: Platform;

test.before(async () => {
  p = await startPlatform({ dispatchers: 3, metrics: true });
  await p.start("gateway", { PICLOUD_PORT: String(await freePort()) });
});
test.after.always(() => p?.close());

/** Runs `fn` over 0..n-1 with at most `width` at once. */
async function pooled<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

test.serial("2 gateways, 3 dispatchers: every sync caller gets its own answer through the gateway it asked; work spreads over all dispatchers", async (t) => {
  const gateways = p.running("gateway");
  const dispatchers = p.running("dispatcher");
  t.is(gateways.length, 2);
  t.is(dispatchers.length, 3);
  t.not(gateways[0]!.url, gateways[1]!.url);

  const api = p.api((await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token);
  t.is((await api.post(`${V1}/apps`, { slug: "hosts", name: "hosts" })).status, 201);
  const script = await api.post(`${V1}/apps/hosts/scripts`, {
    name: "echo",
    source: `export default (ctx) => ({ status: 200, body: { v: ctx.request.query.v, execution_id: ctx.execution_id } })`,
  });
  t.is((await api.post(`${V1}/scripts/${script.body.id}/routes`, { path: "/echo" })).status, 201);
  t.is((await api.post(`${V1}/scripts/${script.body.id}/routes`, { path: "/later", dispatch_mode: "async" })).status, 201);
  // the second gateway learns the routes by NOTIFY
  await waitUntil(async () => (await fetch(`${gateways[1]!.url}/echo?v=x`)).status === 200, 10_000);
  const executed = async () => {
    const counts = await Promise.all(dispatchers.map(async (d) => (await scrape(d.metricsUrl!)).samples.filter((s) => s.name === "picloud_executions_total").reduce((n, s) => n + s.value, 0)));
    return counts;
  };
  const before = await executed();
  const syncedBefore = await Promise.all(gateways.map(async (g) => (await scrape(g.metricsUrl!)).samples.find((s) => s.name === "picloud_sync_request_duration_seconds_count" && s.labels.outcome === "succeeded")?.value ?? 0));

  // sync requests alternate between the gateways, 12 in flight at once, with async ones among them
  const asked = Array.from({ length: SYNC }, (_, i) => ({ gateway: i % 2, v: `${i}-${randomUUID()}` }));
  const [replies, accepted] = await Promise.all([
    pooled(SYNC, 12, async (i) => {
      const res = await fetch(`${gateways[asked[i]!.gateway]!.url}/echo?v=${asked[i]!.v}`);
      return { status: res.status, body: (await res.json()) as { v: string; execution_id: string } };
    }),
    pooled(ASYNC, 4, async (i) => {
      const res = await fetch(`${gateways[i % 2]!.url}/later?v=a${i}`, { method: "POST" });
      return { status: res.status, body: (await res.json()) as { execution_id: string } };
    }),
  ]);
  // (a) each caller got the answer to its own request
  t.deepEqual(replies.map((r) => r.status), asked.map(() => 200));
  t.deepEqual(replies.map((r) => r.body.v), asked.map((a) => a.v));
  t.is(new Set(replies.map((r) => r.body.execution_id)).size, SYNC);
  // … through the gateway it asked: each gateway counted exactly its own half
  const synced = await Promise.all(gateways.map(async (g) => (await scrape(g.metricsUrl!)).samples.find((s) => s.name === "picloud_sync_request_duration_seconds_count" && s.labels.outcome === "succeeded")?.value ?? 0));
  t.deepEqual(synced.map((n, i) => n - syncedBefore[i]!), [SYNC / 2, SYNC / 2]);

  t.deepEqual(accepted.map((r) => r.status), accepted.map(() => 202));
  const ids = accepted.map((r) => r.body.execution_id);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM executions WHERE id = ANY(${sql.array(ids, "uuid")}) AND status = 'succeeded'`)) === ASYNC, 30_000);

  // (b) the work spread over all three dispatchers, and they ran each execution once
  let ran: number[] = [];
  await waitUntil(async () => (ran = (await executed()).map((n, i) => n - before[i]!)).reduce((a, b) => a + b, 0) === SYNC + ASYNC, 10_000);
  t.log(`executions per dispatcher: ${ran.join(", ")} (of ${SYNC + ASYNC})`);
  for (const n of ran) t.true(n > 0, `a dispatcher ran nothing: ${ran.join(", ")}`);
});

const root = fileURLToPath(new URL("..", import.meta.url));
/** ecosystem.config.cjs's app list under an environment (a fresh node each time: pm2 reads it that way). */
function ecosystem(env: Record<string, string>, fields = ["name", "instances"]): { apps?: Record<string, unknown>[]; error?: string } {
  const pick = `(a) => Object.fromEntries(${JSON.stringify(fields)}.map((f) => [f, a[f]]))`;
  const r = spawnSync(process.execPath, ["-e", `process.stdout.write(JSON.stringify(require(${JSON.stringify(path.join(root, "ecosystem.config.cjs"))}).apps.map(${pick})))`], {
    env: { PATH: process.env.PATH, ...env },
    encoding: "utf8",
  });
  return r.status === 0 ? { apps: JSON.parse(r.stdout) } : { error: r.stderr };
}

test("ecosystem.config.cjs: the processes of this host from PICLOUD_ROLES and PICLOUD_DISPATCHERS", (t) => {
  t.deepEqual(ecosystem({}).apps, [{ name: "gateway" }, { name: "dispatcher", instances: 2 }, { name: "sweeper" }]);
  t.deepEqual(ecosystem({ PICLOUD_ROLES: "gateway,dispatcher", PICLOUD_DISPATCHERS: "3" }).apps, [{ name: "gateway" }, { name: "dispatcher", instances: 3 }]);
  t.deepEqual(ecosystem({ PICLOUD_ROLES: " dispatcher ", PICLOUD_DISPATCHERS: "4" }).apps, [{ name: "dispatcher", instances: 4 }]);
  t.deepEqual(ecosystem({ PICLOUD_ROLES: "sweeper" }).apps, [{ name: "sweeper" }]);
  t.regex(ecosystem({ PICLOUD_ROLES: "gateway,worker" }).error!, /PICLOUD_ROLES: unknown role "worker"/);
  t.regex(ecosystem({ PICLOUD_DISPATCHERS: "0" }).error!, /PICLOUD_DISPATCHERS="0" is not valid/);
});

test("ecosystem.config.cjs: pm2 runs each service's bundle with plain node and the same flags as the tests' processes", (t) => {
  const apps = ecosystem({}, ["name", "script", "interpreter", "interpreter_args"]).apps!;
  t.deepEqual(
    apps,
    (["gateway", "dispatcher", "sweeper"] as const).map((name) => ({
      name,
      script: path.relative(root, bundlePath(name)),
      interpreter: "node",
      interpreter_args: BUNDLE_NODE_ARGS.join(" "),
    })),
  );
});
