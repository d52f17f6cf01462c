// The outbox's queue operations against real Postgres, one at a time (no processes): the claim
// statement, completion (reply, retry, fencing, abandoned), stale-claim recovery, release,
// idempotency, the NOTIFY discipline. Serial: every test claims from the same table.
import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { loadConfig } from "../lib/config.ts";
import { createDb, sql, type Db } from "../lib/db/pool.ts";
import type { ExecutionOutcome } from "../lib/executor/index.ts";
import { createLogger } from "../lib/log.ts";
import {
  OUTBOX_CHANNEL,
  abandonSync,
  claimBatch,
  completeBatch,
  enqueue,
  enqueueOnce,
  enqueuer,
  findPendingExecution,
  heartbeat,
  keepAbandoned,
  lockStaleClaims,
  releaseClaims,
  retryDelayMs,
  scriptKey,
  type ClaimedRow,
  type NewOutboxRow,
} from "../lib/outbox/index.ts";
import { Executor } from "../lib/executor/index.ts";
import { Dispatcher, type HostCall } from "../services/dispatcher/dispatcher.ts";
import { sweepOnce } from "../services/sweeper/sweep.ts";
import { freshDatabase } from "./helpers/db.ts";

let db: Db;
let url: string;
let appId: string;
let scriptId: string;
const config = loadConfig({ PICLOUD_TRIGGER_RETRY_BASE_MS: "1000", PICLOUD_TRIGGER_RETRY_JITTER_PCT: "0" });
const quiet = createLogger("outbox-test", "silent");
const LEASE = 30_000;

test.before(async () => {
  url = (await freshDatabase()).url;
  db = await createDb(url);
  appId = (await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('ob', 'Outbox') RETURNING id`)) as string;
  scriptId = (await db.oneFirst(sql.unsafe`INSERT INTO scripts (app_id, name, source) VALUES (${appId}, 's', 'export default () => 1') RETURNING id`)) as string;
});
test.after.always(() => db?.end());
test.beforeEach(async () => {
  await db.query(sql.unsafe`DELETE FROM outbox`);
  await db.query(sql.unsafe`DELETE FROM dispatchers`);
});

const row = (over: Partial<NewOutboxRow> = {}): NewOutboxRow => {
  const id = randomUUID();
  return { id, kind: "http_async", appId, scriptId, payload: { request: { path: "/x" } }, rootExecutionId: id, ...over };
};
const ok = (body = "{}"): ExecutionOutcome => ({ ok: true, response: { status: 200, headers: { "content-type": "application/json" }, body }, logs: [], durationMs: 3 });
const failed = (message = "boom"): ExecutionOutcome => ({ ok: false, error: { code: "script_error", message }, logs: [], durationMs: 3 });
const finished = (r: ClaimedRow, outcome: ExecutionOutcome) => ({ row: r, outcome, startedAt: new Date() });
const count = async (q: ReturnType<typeof sql.unsafe>) => Number(await db.oneFirst(q));

/** A raw LISTEN connection that records what it hears. */
async function listen(channel: string): Promise<{ heard: { channel: string; payload: string }[]; close(): Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const heard: { channel: string; payload: string }[] = [];
  c.on("notification", (n) => heard.push({ channel: n.channel, payload: n.payload ?? "" }));
  await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
  return { heard, close: () => c.end() };
}
const settle = () => new Promise((r) => setTimeout(r, 150));

test.serial("enqueue wakes dispatchers with an empty NOTIFY, sent only when the row commits", async (t) => {
  const l = await listen(OUTBOX_CHANNEL);
  t.teardown(() => l.close());
  await db.transaction(async (tx) => {
    await enqueue(tx, [row()]);
    await settle();
    t.is(l.heard.length, 0, "nothing before commit");
  });
  await settle();
  t.deepEqual(l.heard, [{ channel: OUTBOX_CHANNEL, payload: "" }]);
  await db.transaction(async (tx) => {
    await enqueue(tx, [row()]);
    throw new Error("rolled back");
  }).catch(() => undefined);
  await settle();
  t.is(l.heard.length, 1, "a rolled-back row wakes nobody");
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 1);
});

test.serial("enqueuer: rows of concurrent requests share a statement (one commit, one NOTIFY); a lone row does not wait", async (t) => {
  const l = await listen(OUTBOX_CHANNEL);
  t.teardown(() => l.close());
  const put = enqueuer(db, { inFlight: 1 });
  await put(row());
  await settle();
  t.is(l.heard.length, 1);
  // One statement in flight at a time: the first row goes alone, the other 19 together after it.
  const rows = Array.from({ length: 20 }, () => row());
  const accepted = await Promise.all(rows.map((r) => put(r)));
  await settle();
  t.is(l.heard.length, 3);
  t.is(new Set(accepted.slice(1)).size, 1, "the batch shares one accepted_at");
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 21);
});

test.serial("enqueuer: a row the database refuses fails its own request only; the rest of its batch is written", async (t) => {
  const put = enqueuer(db, { inFlight: 1 });
  const good = Array.from({ length: 5 }, () => row());
  const bad = row({ appId: randomUUID() }); // no such app: a foreign-key violation (SQLSTATE 23503)
  const results = await Promise.allSettled([put(row()), ...good.slice(0, 2).map(put), put(bad), ...good.slice(2).map(put)]);
  t.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"]);
  t.regex(String((results[3] as PromiseRejectedResult).reason), /foreign key/);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 6);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${bad.id}`), 0);
});

test.serial("claimBatch: oldest ready rows first, up to the limit, the attempt counted, a lease set; delayed rows wait and say when", async (t) => {
  const rows = [row(), row(), row()];
  for (const r of rows) await enqueue(db, [r]);
  const later = row();
  await enqueue(db, [later]);
  await db.query(sql.unsafe`UPDATE outbox SET run_at = now() + interval '1 hour' WHERE id = ${later.id}`);

  const first = await claimBatch(db, "d1", 2, LEASE);
  t.deepEqual(first.rows.map((r) => r.id), rows.slice(0, 2).map((r) => r.id));
  t.true(first.rows.every((r) => r.attempts === 1 && r.claimed_by === "d1" && r.app_slug === "ob" && r.script_name === "s"));
  t.regex(first.rows[0]!.created_at, /Z$/);
  const second = await claimBatch(db, "d1", 5, LEASE);
  t.deepEqual(second.rows.map((r) => r.id), [rows[2]!.id]);
  t.true(second.nextRunAt! > Date.now() + 3500_000 && second.nextRunAt! < Date.now() + 3700_000);
  const lease = await db.oneFirst(sql.unsafe`SELECT extract(epoch FROM lease_until - now()) FROM outbox WHERE id = ${rows[0]!.id}`);
  t.true(Number(lease) > 29 && Number(lease) <= 30);
  const none = await claimBatch(db, "d2", 5, LEASE);
  t.deepEqual(none.rows, []);
  t.is(none.nextRunAt, second.nextRunAt);
});

test.serial("claimBatch: sends a script's source only when the claimer does not hold that version", async (t) => {
  await enqueue(db, [row(), row()]);
  const key = scriptKey(scriptId, 1);
  const cold = await claimBatch(db, "d1", 1, LEASE, []);
  t.is(cold.rows[0]!.source, "export default () => 1");
  const warm = await claimBatch(db, "d1", 1, LEASE, [key]);
  t.is(warm.rows[0]!.source, null);
  await db.query(sql.unsafe`UPDATE scripts SET source = 'export default () => 2', version = version + 1 WHERE id = ${scriptId}`);
  await enqueue(db, [row()]);
  const bumped = await claimBatch(db, "d1", 1, LEASE, [key]);
  t.is(bumped.rows[0]!.source, "export default () => 2");
  t.is(bumped.rows[0]!.version, 2);
  await db.query(sql.unsafe`UPDATE scripts SET source = 'export default () => 1', version = 1 WHERE id = ${scriptId}`);
});

test.serial("claimBatch: concurrent claimers never take the same row (SKIP LOCKED)", async (t) => {
  const n = 300;
  await enqueue(db, Array.from({ length: n }, () => row()));
  const seen: string[] = [];
  await Promise.all(
    ["a", "b", "c", "d"].map(async (who) => {
      for (;;) {
        const { rows } = await claimBatch(db, who, 7, LEASE);
        if (!rows.length) return;
        seen.push(...rows.map((r) => r.id));
      }
    }),
  );
  t.is(seen.length, n);
  t.is(new Set(seen).size, n);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE claimed_by IS NULL OR attempts <> 1`), 0);
});

test.serial("completeBatch: a success leaves the outbox, is recorded, and its sync caller is answered inline (one NOTIFY)", async (t) => {
  const r = row({ kind: "http_sync", replyTo: "picloud_reply_test1" });
  const l = await listen("picloud_reply_test1");
  t.teardown(() => l.close());
  await enqueue(db, [r]);
  const [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  await completeBatch(db, [finished(claimed!, ok('{"a":1}'))], config);
  await settle();
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 0);
  const exec = await db.one(sql.unsafe`SELECT status, attempts, kind, response FROM executions WHERE id = ${r.id}`);
  t.like(exec, { status: "succeeded", attempts: 1, kind: "http_sync" });
  t.is(l.heard.length, 1);
  t.like(JSON.parse(l.heard[0]!.payload), { id: r.id, ok: true, response: { status: 200, body: '{"a":1}' } });
});

test.serial("completeBatch: a reply too large for a NOTIFY is announced by id and read from the executions row", async (t) => {
  const r = row({ kind: "http_sync", replyTo: "picloud_reply_test2" });
  const l = await listen("picloud_reply_test2");
  t.teardown(() => l.close());
  await enqueue(db, [r]);
  const [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  const big = JSON.stringify("z".repeat(10_000));
  await completeBatch(db, [finished(claimed!, ok(big))], config);
  await settle();
  t.deepEqual(JSON.parse(l.heard[0]!.payload), { id: r.id, stored: true });
  t.true(Buffer.byteLength(l.heard[0]!.payload) < 100);
  t.is((await db.oneFirst(sql.unsafe`SELECT response->>'body' FROM executions WHERE id = ${r.id}`)) as string, big);
});

test.serial("completeBatch: a failed async attempt goes back with its backoff and error; the last one is recorded failed", async (t) => {
  const r = row({ retry: { max_attempts: 2, backoff: "constant", base_ms: 60_000, jitter_pct: 0 } });
  await enqueue(db, [r]);
  let [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  await completeBatch(db, [finished(claimed!, failed("first"))], config);
  const back = await db.one(sql.unsafe`SELECT claimed_by, attempts, last_error, extract(epoch FROM run_at - now()) AS wait, first_failed_at FROM outbox WHERE id = ${r.id}`);
  t.like(back, { claimed_by: null, attempts: 1, last_error: { code: "script_error", message: "first" } });
  t.true(Number(back.wait) > 55 && Number(back.wait) <= 60);
  t.truthy(back.first_failed_at);
  await db.query(sql.unsafe`UPDATE outbox SET run_at = now() WHERE id = ${r.id}`);
  [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  t.is(claimed!.attempts, 2);
  await completeBatch(db, [finished(claimed!, failed("second"))], config);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 0);
  t.like(await db.one(sql.unsafe`SELECT status, attempts, error FROM executions WHERE id = ${r.id}`), { status: "failed", attempts: 2, error: { code: "script_error", message: "second" } });
});

test.serial("completeBatch: a sync row is never retried; a completion whose claim was taken back changes nothing", async (t) => {
  const s = row({ kind: "http_sync", retry: { max_attempts: 5, backoff: "constant", base_ms: 0, jitter_pct: 0 } });
  await enqueue(db, [s]);
  let [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  await completeBatch(db, [finished(claimed!, failed())], config);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 0, "sync: one attempt");
  t.is((await db.oneFirst(sql.unsafe`SELECT status FROM executions WHERE id = ${s.id}`)) as string, "failed");

  const a = row();
  await enqueue(db, [a]);
  [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  // the sweeper takes it back and another dispatcher claims it (attempt 2)
  await db.query(sql.unsafe`UPDATE outbox SET claimed_by = NULL WHERE id = ${a.id}`);
  const [again] = (await claimBatch(db, "d2", 1, LEASE)).rows;
  await completeBatch(db, [finished(claimed!, ok())], config);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${a.id} AND claimed_by = 'd2'`), 1, "the stale completion did not touch d2's claim");
  t.is(await count(sql.unsafe`SELECT count(*) FROM executions WHERE id = ${a.id}`), 0);
  await completeBatch(db, [finished(again!, ok())], config);
  t.is((await db.oneFirst(sql.unsafe`SELECT attempts FROM executions WHERE id = ${a.id}`)) as number, 2);
});


test.serial("completeBatch: in one batch each row gets its own delay, error and reply, and only rows still ours change", async (t) => {
  const fast = row({ retry: { max_attempts: 3, backoff: "constant", base_ms: 10_000, jitter_pct: 0 } });
  const slow = row({ retry: { max_attempts: 3, backoff: "constant", base_ms: 50_000, jitter_pct: 0 } });
  const done = row({ kind: "http_sync", replyTo: `picloud_reply_test_${randomUUID().slice(0, 8)}` });
  const lost = row();
  await enqueue(db, [fast, slow, done, lost]);
  const claimed = new Map((await claimBatch(db, "d1", 4, LEASE)).rows.map((r) => [r.id, r]));
  t.is(claimed.size, 4);
  // `lost` was taken back and claimed again by d2 meanwhile
  await db.query(sql.unsafe`UPDATE outbox SET claimed_by = 'd2' WHERE id = ${lost.id}`);
  const heard = await listen(done.replyTo!);
  await completeBatch(db, [
    finished(claimed.get(slow.id)!, failed("slow failed")),
    finished(claimed.get(lost.id)!, ok()),
    finished(claimed.get(done.id)!, ok('{"done":true}')),
    finished(claimed.get(fast.id)!, failed("fast failed")),
  ], config);
  await settle();
  await heard.close();

  const back = async (id: string) => db.one(sql.unsafe`SELECT claimed_by, last_error->>'message' AS error, round(extract(epoch FROM run_at - now())) AS wait FROM outbox WHERE id = ${id}`);
  t.like(await back(fast.id), { claimed_by: null, error: "fast failed" });
  t.like(await back(slow.id), { claimed_by: null, error: "slow failed" });
  const [f, s] = [Number((await back(fast.id)).wait), Number((await back(slow.id)).wait)];
  t.true(f > 5 && f <= 10 && s > 45 && s <= 50, `fast waits ${f} s, slow ${s} s`);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${lost.id} AND claimed_by = 'd2'`), 1, "d2's claim untouched");
  t.is(await count(sql.unsafe`SELECT count(*) FROM executions WHERE id = ${lost.id}`), 0);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${done.id}`), 0);
  t.deepEqual(heard.heard.map((h) => JSON.parse(h.payload).response.body), ['{"done":true}']);
});
test.serial("abandonSync: an unclaimed row is deleted (never runs); a claimed one is marked, completes unheard, and is kept as abandoned", async (t) => {
  const waiting = row({ kind: "http_sync", replyTo: "picloud_reply_test3" });
  await enqueue(db, [waiting]);
  t.is(await abandonSync(db, waiting.id), "deleted");
  t.deepEqual((await claimBatch(db, "d1", 5, LEASE)).rows, []);

  const l = await listen("picloud_reply_test3");
  t.teardown(() => l.close());
  const running = row({ kind: "http_sync", replyTo: "picloud_reply_test3" });
  await enqueue(db, [running]);
  const [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  t.is(await abandonSync(db, running.id), "marked");
  await completeBatch(db, [finished(claimed!, ok('"late"'))], config);
  await settle();
  t.is(l.heard.length, 0, "nobody is answered");
  t.like(await db.one(sql.unsafe`SELECT status, request, response FROM abandoned_executions WHERE id = ${running.id}`), {
    status: "succeeded",
    request: { path: "/x" },
    response: { status: 200, headers: { "content-type": "application/json" }, body: '"late"' },
  });
  t.is(await abandonSync(db, running.id), "gone");
});

test.serial("keepAbandoned: a sync execution that completed while its caller left is kept with the gateway's copy of the request", async (t) => {
  const r = row({ kind: "http_sync" });
  await enqueue(db, [r]);
  const [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  await completeBatch(db, [finished(claimed!, failed("late failure"))], config);
  t.is(await abandonSync(db, r.id), "gone");
  t.true(await keepAbandoned(db, r.id, { path: "/kept" }));
  t.false(await keepAbandoned(db, r.id, { path: "/kept" }), "once");
  t.like(await db.one(sql.unsafe`SELECT status, request, error FROM abandoned_executions WHERE id = ${r.id}`), {
    status: "failed",
    request: { path: "/kept" },
    error: { code: "script_error", message: "late failure" },
  });
});

test.serial("stale claims: a dead dispatcher's async claim is retried with its attempt counted; its sync claim fails and the caller gets a 500 reply", async (t) => {
  const l = await listen("picloud_reply_test4");
  t.teardown(() => l.close());
  const a = row({ retry: { max_attempts: 3, backoff: "constant", base_ms: 0, jitter_pct: 0 } });
  const s = row({ kind: "http_sync", replyTo: "picloud_reply_test4" });
  await enqueue(db, [a, s]);
  await heartbeat(db, "alive", 1, LEASE, []);
  await heartbeat(db, "dead", 1, LEASE, []);
  t.is((await claimBatch(db, "dead", 2, LEASE)).rows.length, 2);
  const kept = row();
  await enqueue(db, [kept]);
  await claimBatch(db, "alive", 1, LEASE);
  await db.query(sql.unsafe`UPDATE dispatchers SET heartbeat_at = now() - interval '1 minute' WHERE id = 'dead'`);

  const r = await sweepOnce(db, config, quiet);
  t.is(r.recovered, 2);
  await settle();
  t.like(await db.one(sql.unsafe`SELECT claimed_by, attempts, last_error FROM outbox WHERE id = ${a.id}`), { claimed_by: null, attempts: 1, last_error: { code: "internal" } });
  t.like(await db.one(sql.unsafe`SELECT status, attempts FROM executions WHERE id = ${s.id}`), { status: "failed", attempts: 1 });
  t.like(JSON.parse(l.heard[0]!.payload), { id: s.id, ok: false, error: { code: "internal" } });
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox WHERE id = ${kept.id} AND claimed_by = 'alive'`), 1, "a live dispatcher keeps its claim");
});

test.serial("stale claims: an expired lease is recovered even while its dispatcher heartbeats; a row that keeps losing its dispatcher ends failed", async (t) => {
  const a = row({ retry: { max_attempts: 2, backoff: "constant", base_ms: 0, jitter_pct: 0 } });
  await enqueue(db, [a]);
  await heartbeat(db, "d1", 1, LEASE, []);
  for (let i = 0; i < 2; i++) {
    t.is((await claimBatch(db, "d1", 1, 100)).rows.length, 1);
    await new Promise((r) => setTimeout(r, 150));
    await heartbeat(db, "d1", 1, LEASE, []); // alive, but this claim is not among those it holds
    t.is((await sweepOnce(db, config, quiet)).recovered, 1);
  }
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 0);
  t.like(await db.one(sql.unsafe`SELECT status, attempts, error FROM executions WHERE id = ${a.id}`), { status: "failed", attempts: 2, error: { code: "internal" } });
});

test.serial("heartbeat extends the lease of the claims a dispatcher holds, and only those", async (t) => {
  const [held, lost] = [row(), row()];
  await enqueue(db, [held, lost]);
  await claimBatch(db, "d1", 2, 1000);
  await heartbeat(db, "d1", 2, 60_000, [held.id]);
  const leases = await db.any(sql.unsafe`SELECT id, extract(epoch FROM lease_until - now()) AS s FROM outbox`);
  const s = Object.fromEntries(leases.map((l: any) => [l.id, Number(l.s)]));
  t.true(s[held.id]! > 55);
  t.true(s[lost.id]! <= 1);
});

test.serial("releaseClaims: handed back ready, the attempt not counted, only our own", async (t) => {
  const [mine, theirs] = [row(), row()];
  await enqueue(db, [mine]);
  await claimBatch(db, "d1", 1, LEASE);
  await enqueue(db, [theirs]);
  await claimBatch(db, "d2", 1, LEASE);
  t.is(await releaseClaims(db, "d1", [mine.id, theirs.id]), 1);
  t.like(await db.one(sql.unsafe`SELECT claimed_by, lease_until, attempts FROM outbox WHERE id = ${mine.id}`), { claimed_by: null, lease_until: null, attempts: 0 });
  t.is((await db.oneFirst(sql.unsafe`SELECT claimed_by FROM outbox WHERE id = ${theirs.id}`)) as string, "d2");
});

test.serial("findPendingExecution: queued, then running while claimed, null once finished", async (t) => {
  const r = row();
  await enqueue(db, [r]);
  t.like(await findPendingExecution(db, r.id), { id: r.id, status: "queued", kind: "http_async", attempts: 0, finished_at: null });
  const [claimed] = (await claimBatch(db, "d1", 1, LEASE)).rows;
  t.like(await findPendingExecution(db, r.id), { status: "running", attempts: 1 });
  await completeBatch(db, [finished(claimed!, ok())], config);
  t.is(await findPendingExecution(db, r.id), null);
  t.is(await findPendingExecution(db, "not-a-uuid"), null);
});

test.serial("enqueueOnce: racing requests with one Idempotency-Key make one row and all get its id; an expired key starts afresh", async (t) => {
  const routeId = randomUUID();
  const results = await Promise.all(Array.from({ length: 10 }, () => enqueueOnce(db, { ...row(), routeId }, "k1")));
  t.is(new Set(results.map((r) => r.executionId)).size, 1);
  t.is(results.filter((r) => !r.repeated).length, 1);
  t.is(await count(sql.unsafe`SELECT count(*) FROM outbox`), 1);
  await db.query(sql.unsafe`UPDATE idempotency_keys SET created_at = now() - interval '25 hours'`);
  const fresh = await enqueueOnce(db, { ...row(), routeId }, "k1");
  t.false(fresh.repeated);
  t.not(fresh.executionId, results[0]!.executionId);
});

test("retryDelayMs: exponential base·2^(n-1), linear base·n, constant base, within ± jitter", (t) => {
  const mid = () => 0.5;
  t.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs({ backoff: "exponential", base_ms: 100, jitter_pct: 20 }, n, mid)), [100, 200, 400, 800]);
  t.deepEqual([1, 2, 3].map((n) => retryDelayMs({ backoff: "linear", base_ms: 100, jitter_pct: 20 }, n, mid)), [100, 200, 300]);
  t.deepEqual([1, 2, 3].map((n) => retryDelayMs({ backoff: "constant", base_ms: 100, jitter_pct: 20 }, n, mid)), [100, 100, 100]);
  t.is(retryDelayMs({ backoff: "exponential", base_ms: 1000, jitter_pct: 20 }, 3, () => 0), 3200);
  t.is(retryDelayMs({ backoff: "exponential", base_ms: 1000, jitter_pct: 20 }, 3, () => 1), 4800);
  for (let i = 0; i < 200; i++) {
    const d = retryDelayMs({ backoff: "linear", base_ms: 1000, jitter_pct: 10 }, 2);
    t.true(d >= 1800 && d <= 2200);
  }
});

test.serial("lockStaleClaims: nothing is stale while Postgres started less than three heartbeats ago", async (t) => {
  await enqueue(db, [row()]);
  await claimBatch(db, "nobody", 1, LEASE);
  const uptimeMs = Number(await db.oneFirst(sql.unsafe`SELECT extract(epoch FROM now() - pg_postmaster_start_time()) * 1000`));
  const stale = await db.transaction((tx) => lockStaleClaims(tx, uptimeMs + 60_000));
  t.is(stale.length, 0, "a stale window longer than the server's uptime: still in the grace period");
  t.is((await db.transaction((tx) => lockStaleClaims(tx, 1))).length, 1);
});

test.serial("dispatcher: a result the database refuses fails alone, as internal; the rest of its batch completes", async (t) => {
  const executor = await Executor.create<HostCall>({ workers: 1, logger: quiet });
  t.teardown(() => executor.close());
  const rows = [row(), row(), row()];
  const poisoned = rows[1]!.id;
  // completion effects that the database refuses for one execution (a data error, not the connection)
  const effects = {
    pending: (items: { row: ClaimedRow }[]) => items,
    async commit(tx: Pick<Db, "query">, items: { row: ClaimedRow }[]) {
      if (items.some((f) => f.row.id === poisoned)) await tx.query(sql.unsafe`SELECT 1 / 0`);
    },
  };
  const d = new Dispatcher(db, executor, loadConfig({ PICLOUD_DISPATCHER_CONCURRENCY: "8" }), quiet, undefined, effects as never);
  await enqueue(db, rows);
  d.wake();
  const ids = sql.array(rows.map((r) => r.id), "uuid");
  for (let i = 0; i < 200 && (await count(sql.unsafe`SELECT count(*) FROM executions WHERE id = ANY(${ids})`)) < 3; i++) await settle();
  const got = await db.any(sql.unsafe`SELECT id, status, error FROM executions WHERE id = ANY(${ids})`);
  t.is(got.length, 3);
  for (const e of got as readonly any[]) {
    if (e.id === poisoned) t.like(e, { status: "failed", error: { code: "internal" } }), t.regex(e.error.message, /could not be recorded: division by zero/);
    else t.is(e.status, "succeeded");
  }
  t.is(d.inFlight, 0);
  await d.stop(1000);
});
