// bench/triggers: KV triggers and KV operations, each figure beside a floor measured in the same
// run. One command, one table:  node --import tsx bench/triggers.ts   (BENCH_QUICK=1: short)
//
//  - KV write committed → triggered script started, p50/p99 over 1,000 writes (one every 5 ms),
//    beside (a) the spine's own path: an outbox row committed → its script started, and (b) the
//    outbox floor: a row committed → claimed by a bare LISTEN + SKIP LOCKED worker (no HTTP, no
//    QuickJS). Start times come from the script's Date.now() (1 ms resolution), so picloud's
//    figures carry up to 1 ms of rounding (down); the floor is timed with performance.now().
//  - KV get and set operations per second from inside a script (sets are buffered and commit
//    with the execution: also shown end to end, commit included), beside raw pg round trips of
//    the same single-row read and upsert from Node.
import pg from "pg";
import { loadConfig } from "../lib/config.ts";
import { createDb, sql } from "../lib/db/pool.ts";
import { migrate } from "../lib/db/migrate.ts";
import { writeNow } from "../lib/kv/index.ts";
import { createLogger } from "../lib/log.ts";
import { enqueue } from "../lib/outbox/index.ts";
import { startPlatform } from "../test/helpers/platform.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const WRITES = QUICK ? 300 : 1000;
const GAP_MS = 5;
const OPS = QUICK ? 2000 : 10000;
const base = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test";

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);
const wall = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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

// ---------- floor: row committed → claimed by a bare LISTEN worker ----------
async function outboxFloor(n: number): Promise<number[]> {
  const url = await freshDb("picloud_bench_trig_floor");
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query("CREATE TABLE q (id bigserial PRIMARY KEY, claimed boolean NOT NULL DEFAULT false)");
  const writer = new pg.Client({ connectionString: url });
  const listener = new pg.Client({ connectionString: url });
  const worker = new pg.Client({ connectionString: url });
  await Promise.all([writer.connect(), listener.connect(), worker.connect()]);
  const committed = new Map<string, number>();
  const lat: number[] = [];
  let busy = false;
  let again = false;
  const claim = async () => {
    if (busy) return void (again = true);
    busy = true;
    for (;;) {
      const { rows } = await worker.query<{ id: string }>("WITH c AS (SELECT id FROM q WHERE NOT claimed ORDER BY id LIMIT 16 FOR UPDATE SKIP LOCKED) UPDATE q SET claimed = true FROM c WHERE q.id = c.id RETURNING q.id");
      const at = wall();
      for (const r of rows) {
        const t0 = committed.get(r.id);
        if (t0 !== undefined) lat.push(at - t0);
      }
      if (!again) break;
      again = false;
    }
    busy = false;
  };
  listener.on("notification", () => void claim());
  await listener.query("LISTEN q_new");
  for (let i = 0; i < n; i++) {
    const { rows } = await writer.query<{ id: string }>("WITH i AS (INSERT INTO q DEFAULT VALUES RETURNING id), w AS (SELECT pg_notify('q_new', '')) SELECT id::text FROM i, w");
    committed.set(rows[0]!.id, wall());
    await sleep(GAP_MS);
  }
  await sleep(200);
  await Promise.all([writer.end(), listener.end(), worker.end(), setup.end()]);
  await dropDb("picloud_bench_trig_floor");
  return lat;
}

// ---------- raw pg: single-row read and upsert round trips from Node ----------
async function rawOps(n: number): Promise<{ get: number; set: number }> {
  const url = await freshDb("picloud_bench_trig_raw");
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query("CREATE TABLE kv (k text COLLATE \"C\" PRIMARY KEY, v json NOT NULL)");
  await c.query("INSERT INTO kv SELECT 'k' || i, '1' FROM generate_series(0, 99) i");
  let t = performance.now();
  for (let i = 0; i < n; i++) await c.query("SELECT v::text FROM kv WHERE k = $1", [`k${i % 100}`]);
  const get = n / ((performance.now() - t) / 1000);
  t = performance.now();
  await c.query("BEGIN");
  for (let i = 0; i < n; i++) await c.query("INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v", [`s${i % 1000}`, String(i)]);
  await c.query("COMMIT");
  const set = n / ((performance.now() - t) / 1000);
  await c.end();
  await dropDb("picloud_bench_trig_raw");
  return { get, set };
}

// ---------- picloud ----------
async function picloud(): Promise<{ trigger: number[]; spine: number[]; ops: { get: number; set: number; setEndToEnd: number } }> {
  const url = await freshDb("picloud_bench_triggers");
  await migrate(url);
  const env = { LOG_LEVEL: "warn", PICLOUD_HEARTBEAT_MS: "2000", PICLOUD_POLL_INTERVAL_MS: "5000", PICLOUD_SWEEP_INTERVAL_MS: "5000", PICLOUD_LEASE_MS: "30000" };
  const p = await startPlatform({ dbUrl: url, dispatchers: 2, env });
  const token = (await p.api().post("/api/v1/admin/bootstrap", { email: "bench@example.com", password: "bench-password" })).body.token;
  const api = p.api(token);
  const appId = (await api.post("/api/v1/admin/apps", { slug: "bench", name: "Bench" })).body.id as string;
  const mk = async (name: string, source: string, extra: Record<string, unknown> = {}) => (await api.post("/api/v1/admin/apps/bench/scripts", { name, source, ...extra })).body.id as string;
  const started = await mk("started", "export default (ctx) => ({ started: Date.now(), key: ctx.event ? ctx.event.key : ctx.request.query.k })");
  await api.post("/api/v1/admin/apps/bench/triggers/kv", { script_id: started, collection_glob: "bench", ops: ["insert", "update"] });
  const ops = await mk(
    "ops",
    `export default async (ctx) => {
       const n = Number(ctx.request.query.n), c = kv.collection("ops");
       if (ctx.request.query.mode === "get") { const t = Date.now(); for (let i = 0; i < n; i++) await c.get("k" + (i % 100)); return { ms: Date.now() - t }; }
       const t = Date.now(); for (let i = 0; i < n; i++) await c.set("s" + (i % 1000), i); return { ms: Date.now() - t };
     }`,
    { timeout_ms: 120000 },
  );
  await api.post(`/api/v1/admin/scripts/${ops}/routes`, { path: "/ops" });

  const db = await createDb(url, { maximumPoolSize: 2 });
  const triggerEnv = { config: loadConfig({ ...env, DATABASE_URL: url }), log: createLogger("bench", "silent") };
  const startedOf = async (kind: string, n: number) => {
    for (let tries = 0; ; tries++) {
      const rows = await db.any(sql.unsafe`SELECT response FROM executions WHERE app_id = ${appId} AND kind = ${kind} AND status = 'succeeded'`);
      if (rows.length >= n || tries > 200) return new Map(rows.map((r: any) => [JSON.parse(r.response.body).key as string, JSON.parse(r.response.body).started as number]));
      await sleep(50);
    }
  };

  // warm the sandboxes and connections
  for (let i = 0; i < 50; i++) await writeNow(db, triggerEnv, appId, "bench", `warm-${i}`, "1", null);
  await sleep(500);
  await db.query(sql.unsafe`DELETE FROM executions`);

  // KV write committed → triggered script started
  const committed = new Map<string, number>();
  for (let i = 0; i < WRITES; i++) {
    const key = `k${i}`;
    await writeNow(db, triggerEnv, appId, "bench", key, String(i), null);
    committed.set(key, wall());
    await sleep(GAP_MS);
  }
  const starts = await startedOf("kv", WRITES);
  const trigger = [...committed].flatMap(([k, t0]) => (starts.has(k) ? [starts.get(k)! - t0] : []));

  // the spine's own path: outbox row committed → script started
  const queued = new Map<string, number>();
  for (let i = 0; i < WRITES; i++) {
    const id = crypto.randomUUID();
    const key = `e${i}`;
    await enqueue(db, [{ id, kind: "http_async", appId, scriptId: started, payload: { request: { method: "POST", path: "/", query: { k: key }, headers: {}, body: null, params: {} } }, rootExecutionId: id }]);
    queued.set(key, wall());
    await sleep(GAP_MS);
  }
  const spineStarts = await startedOf("http_async", WRITES);
  const spine = [...queued].flatMap(([k, t0]) => (spineStarts.has(k) ? [spineStarts.get(k)! - t0] : []));

  // KV operations from inside a script
  await fetch(`${p.url}/ops?mode=set&n=1000`); // creates the keys and warms
  const g = await (await fetch(`${p.url}/ops?mode=get&n=${OPS}`)).json();
  const t = performance.now();
  const s = await (await fetch(`${p.url}/ops?mode=set&n=${OPS}`)).json();
  const setEndToEnd = OPS / ((performance.now() - t) / 1000);

  await db.end();
  await p.close();
  await dropDb("picloud_bench_triggers");
  return { trigger, spine, ops: { get: OPS / (Math.max(1, g.ms) / 1000), set: OPS / (Math.max(1, s.ms) / 1000), setEndToEnd } };
}

const floor = await outboxFloor(WRITES);
const raw = await rawOps(OPS);
const ours = await picloud();

const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
const rows: string[][] = [];
const row = (metric: string, value: string, floor: string, ratio: string, target: string) => rows.push([metric, value, floor, ratio, target]);
row(`KV write committed → triggered script started, p50 ms (${ours.trigger.length} writes)`, f(pct(ours.trigger, 50), 2), f(pct(floor, 50), 2), `${f(pct(ours.trigger, 50) / pct(floor, 50), 1)}×`, "≤ 5");
row("… p99 ms", f(pct(ours.trigger, 99), 2), f(pct(floor, 99), 2), `${f(pct(ours.trigger, 99) / pct(floor, 99), 1)}×`, "");
row(`outbox row committed → script started (spine), p50 / p99 ms`, `${f(pct(ours.spine, 50), 2)} / ${f(pct(ours.spine, 99), 2)}`, `${f(pct(floor, 50), 2)} / ${f(pct(floor, 99), 2)}`, `${f(pct(ours.spine, 50) / pct(floor, 50), 1)}×`, "");
row(`kv get ops/s inside a script (${OPS})`, f(ours.ops.get, 0), f(raw.get, 0), `${f(ours.ops.get / raw.get, 2)}×`, "");
row(`kv set ops/s inside a script (buffered)`, f(ours.ops.set, 0), f(raw.set, 0), `${f(ours.ops.set / raw.set, 2)}×`, "");
row(`kv set ops/s end to end (HTTP, run, commit)`, f(ours.ops.setEndToEnd, 0), f(raw.set, 0), `${f(ours.ops.setEndToEnd / raw.set, 2)}×`, "");

console.log(`\nbench/triggers ${QUICK ? "(quick) " : ""}— floors: a row committed → claimed by a bare LISTEN + SKIP LOCKED pg worker; raw pg single-row read / upsert round trips from Node`);
console.log("| metric | picloud | floor | ratio | target |");
console.log("|---|---:|---:|---:|---|");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
process.exit(0);
