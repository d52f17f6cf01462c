// The limits of triggered work, end to end with real processes: the depth limit against a
// self-triggering script (PICLOUD_MAX_TRIGGER_DEPTH=3 here), and retry timings per trigger
// policy, measured between attempts, within their jitter bounds.
import test from "ava";
import { sql } from "../lib/db/pool.ts";
import { startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

let p: Platform;
let token: string;
const V1 = "/api/v1/admin";
const MAX_DEPTH = 3;

test.before(async () => {
  // No poll within a test's time: a retry that comes due must wake its dispatcher by itself.
  p = await startPlatform({ dispatchers: 2, env: { PICLOUD_MAX_TRIGGER_DEPTH: String(MAX_DEPTH), PICLOUD_POLL_INTERVAL_MS: "60000" } });
  token = (await p.api().post(`${V1}/bootstrap`, { email: "o@example.com", password: "owner-password" })).body.token;
});
test.after.always(() => p?.close());

async function setup(slug: string, source: string, trigger: Record<string, unknown>): Promise<{ appId: string; scriptId: string; triggerId: string }> {
  const api = p.api(token);
  const appId = (await api.post(`${V1}/apps`, { slug, name: slug })).body.id;
  const scriptId = (await api.post(`${V1}/apps/${slug}/scripts`, { name: "s", source })).body.id;
  const t = await api.post(`${V1}/apps/${slug}/triggers/kv`, { script_id: scriptId, ...trigger });
  if (t.status !== 201) throw new Error(JSON.stringify(t.body));
  return { appId, scriptId, triggerId: t.body.id };
}

test("depth limit: a self-triggering script runs to the maximum depth; the next row is dropped with a warning and counted, no dead letter", async (t) => {
  const { appId, scriptId, triggerId } = await setup("loop", `export default async (ctx) => { await kv.collection("loop").set("n", ctx.event.value + 1); return ctx.trigger_depth; }`, {
    collection_glob: "loop",
    ops: ["insert", "update"],
  });
  const put = await p.api(token).put(`${V1}/apps/loop/kv/loop/keys/n`, { value: 0 });
  t.is(put.status, 201);
  await waitUntil(async () => Number((await p.api(token).get(`${V1}/apps/loop/triggers/stats`)).body.depth_exceeded) === 1, 20_000);
  await waitUntil(async () => Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE app_id = ${appId}`)) === 0, 10_000);
  const runs = await p.db.any(sql.unsafe`SELECT id, trigger_depth, root_execution_id, status FROM executions WHERE app_id = ${appId} ORDER BY trigger_depth`);
  t.deepEqual(runs.map((r: any) => r.trigger_depth), [0, 1, 2, 3]);
  t.true(runs.every((r: any) => r.status === "succeeded"));
  const root = (runs[0] as any).id;
  t.true(runs.every((r: any) => r.root_execution_id === root), "one lineage");
  // the deepest execution's own write committed; only the row it would have fired was dropped
  t.is((await p.api(token).get(`${V1}/apps/loop/kv/loop/keys/n`)).body.value, 4);
  const stats = (await p.api(token).get(`${V1}/apps/loop/triggers/stats`)).body;
  t.like(stats, { depth_exceeded: 1, last_root_execution_id: root });
  t.truthy(Date.parse(stats.last_dropped_at));
  t.deepEqual((await p.api(token).get(`${V1}/apps/loop/dead-letters/count`)).body, { unresolved: 0 });
  const warning = p
    .output()
    .split("\n")
    .filter((l) => l.includes("past the maximum trigger depth"))
    .map((l) => JSON.parse(l));
  t.is(warning.length, 1);
  t.like(warning[0], { level: 40, app_id: appId, script_id: scriptId, trigger_id: triggerId, root_execution_id: root, depth: MAX_DEPTH + 1, max_depth: MAX_DEPTH });
});

test("retry timings: exponential, linear and constant per trigger, each gap within its jitter bounds; then a dead letter", async (t) => {
  const policies = {
    exponential: { backoff: "exponential", base_ms: 300, jitter_pct: 25, expected: [300, 600] },
    linear: { backoff: "linear", base_ms: 250, jitter_pct: 0, expected: [250, 500] },
    constant: { backoff: "constant", base_ms: 400, jitter_pct: 10, expected: [400, 400] },
  } as const;
  const apps: Record<string, string> = {};
  for (const [name, pol] of Object.entries(policies)) {
    const { appId } = await setup(`retry-${name}`, `export default () => { throw new Error("always"); }`, {
      collection_glob: "*",
      ops: ["insert"],
      retry: { max_attempts: 3, backoff: pol.backoff, base_ms: pol.base_ms, jitter_pct: pol.jitter_pct },
    });
    apps[name] = appId;
    await p.api(token).put(`${V1}/apps/retry-${name}/kv/c/keys/k`, { value: 1 });
  }
  for (const [name, pol] of Object.entries(policies)) {
    await waitUntil(async () => (await p.api(token).get(`${V1}/apps/retry-${name}/dead-letters/count`)).body.unresolved === 1, 20_000);
    const execution = await p.db.oneFirst(sql.unsafe`SELECT id FROM executions WHERE app_id = ${apps[name]!}`);
    // the dispatchers log each attempt as it ends ("execution finished", with its time)
    const ends = p
      .output()
      .split("\n")
      .filter((l) => l.includes(execution as string) && l.includes("execution finished"))
      .map((l) => JSON.parse(l))
      .sort((a, b) => a.attempt - b.attempt);
    t.deepEqual(ends.map((e) => e.attempt), [1, 2, 3], name);
    for (const [i, base] of pol.expected.entries()) {
      const gap = ends[i + 1].time - ends[i].time;
      const lo = base * (1 - pol.jitter_pct / 100);
      const hi = base * (1 + pol.jitter_pct / 100);
      // at least the delay (the next attempt cannot start earlier); at most the delay plus the
      // time to commit, wake and run (loopback, a trivial script; up to ~0.5 s on a busy CI
      // machine) — never a poll's wait, as this platform does not poll within the test
      t.true(gap >= lo - 5 && gap <= hi + 1000, `${name}: gap ${i + 1} was ${gap} ms, expected ${lo}..${hi} (+ scheduling)`);
    }
    const dl = (await p.api(token).get(`${V1}/apps/retry-${name}/dead-letters`)).body.items[0];
    t.like(dl, { attempts: 3, max_attempts: 3, retry: { backoff: pol.backoff, base_ms: pol.base_ms, jitter_pct: pol.jitter_pct } });
    t.true(Date.parse(dl.last_failed_at) - Date.parse(dl.first_failed_at) >= pol.expected[0]! * (1 - pol.jitter_pct / 100) + pol.expected[1]! * (1 - pol.jitter_pct / 100) - 10);
  }
});
