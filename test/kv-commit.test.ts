// How an execution's buffered KV writes commit with its completion (lib/outbox/complete.ts +
// lib/kv/session.ts), against a real Postgres: only for a claim still ours (a recovered and
// re-run execution never double-applies), never for a failed one, and a write that cannot apply
// fails its execution instead of wedging the batch it completes with.
import { randomUUID } from "node:crypto";
import test from "ava";
import { loadConfig } from "../lib/config.ts";
import { createDb, sql, type Db } from "../lib/db/pool.ts";
import { kvCompletionEffects, kvModule } from "../lib/kv/index.ts";
import { createLogger } from "../lib/log.ts";
import { claimBatch, completeBatch, enqueue, type Finished } from "../lib/outbox/index.ts";
import { freshDatabase } from "./helpers/db.ts";

let db: Db;
let appId: string;
let scriptId: string;
const config = loadConfig({ PICLOUD_TRIGGER_RETRY_BASE_MS: "0" });
const log = createLogger("test", "silent");
let kv: ReturnType<typeof kvModule>;

test.before(async () => {
  db = await createDb((await freshDatabase()).url);
  appId = (await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('c', 'c') RETURNING id`)) as string;
  scriptId = (await db.oneFirst(sql.unsafe`INSERT INTO scripts (app_id, name, source) VALUES (${appId}, 's', 'export default () => 1') RETURNING id`)) as string;
  kv = kvModule({ db, env: { config, log } });
});
test.after.always(() => db?.end());

/** An async row, claimed by `dispatcher`, and the host context its run would have. */
async function claimed(dispatcher: string, maxAttempts = 1) {
  const id = randomUUID();
  await enqueue(db, [{ id, kind: "http_async", appId, scriptId, payload: { request: {} }, rootExecutionId: id, retry: { max_attempts: maxAttempts, backoff: "constant", base_ms: 0, jitter_pct: 0 } }]);
  const [row] = (await claimBatch(db, dispatcher, 1, 60_000)).rows;
  return { row: row!, call: { appId, executionId: id, triggerDepth: 0, rootExecutionId: id } };
}
const set = (call: object, key: string, json: string) => kv.handlers["kv.set"]!(call, ["col", key, json, null]);
const entry = (key: string) => db.maybeOneFirst(sql.unsafe`SELECT value::text FROM kv_entries WHERE app_id = ${appId} AND collection = 'col' AND key = ${key}`);
const ok = { ok: true as const, response: { status: 204, headers: {}, body: "" }, logs: [], durationMs: 1 };

test.serial("writes commit with a completion that is still ours, and only then", async (t) => {
  const mine = await claimed("d1");
  await set(mine.call, "mine", "1");
  t.is(await entry("mine"), null, "buffered until completion");
  await completeBatch(db, [{ row: mine.row, outcome: ok, startedAt: new Date(), call: mine.call }], config, undefined, kvCompletionEffects);
  t.is(await entry("mine"), "1");
  t.is(await db.oneFirst(sql.unsafe`SELECT status FROM executions WHERE id = ${mine.row.id}`), "succeeded");

  // the claim was recovered and handed to another dispatcher meanwhile: the late completion applies nothing
  const late = await claimed("d1", 3);
  await set(late.call, "late", "1");
  await db.query(sql.unsafe`UPDATE outbox SET claimed_by = 'd2', attempts = attempts + 1 WHERE id = ${late.row.id}`);
  await completeBatch(db, [{ row: late.row, outcome: ok, startedAt: new Date(), call: late.call }], config, undefined, kvCompletionEffects);
  t.is(await entry("late"), null);
  t.is(await db.maybeOneFirst(sql.unsafe`SELECT status FROM executions WHERE id = ${late.row.id}`), null);
  t.is(await db.oneFirst(sql.unsafe`SELECT claimed_by FROM outbox WHERE id = ${late.row.id}`), "d2");
});

test.serial("a failed execution's writes are dropped, its retry starts clean", async (t) => {
  const run = await claimed("d1", 2);
  await set(run.call, "failed", "1");
  const failed: Finished = { row: run.row, outcome: { ok: false, error: { code: "script_error", message: "x" }, logs: [], durationMs: 1 }, startedAt: new Date(), call: run.call };
  await completeBatch(db, [failed], config, undefined, kvCompletionEffects);
  t.is(await entry("failed"), null);
  // the retry is a new run with a new host context
  const [again] = (await claimBatch(db, "d1", 1, 60_000)).rows;
  t.is(again!.id, run.row.id);
  const call = { appId, executionId: run.row.id, triggerDepth: 0, rootExecutionId: run.row.id };
  await set(call, "retried", "2");
  await completeBatch(db, [{ row: again!, outcome: ok, startedAt: new Date(), call }], config, undefined, kvCompletionEffects);
  t.is(await entry("failed"), null);
  t.is(await entry("retried"), "2");
});

test.serial("a write that cannot apply fails its own execution; the others in the batch commit", async (t) => {
  const good = await claimed("d1");
  const bad = await claimed("d1");
  await set(good.call, "good", "1");
  // a context naming an app that does not exist: its write cannot apply (foreign key)
  const badCall = { ...bad.call, appId: randomUUID() };
  await set(badCall, "bad", "1");
  const batch: Finished[] = [
    { row: good.row, outcome: ok, startedAt: new Date(), call: good.call },
    { row: bad.row, outcome: ok, startedAt: new Date(), call: badCall },
  ];
  // first try: the batch fails as a whole (the dispatcher keeps it and tries again)
  await t.throwsAsync(completeBatch(db, batch, config, undefined, kvCompletionEffects));
  t.is(await entry("good"), null);
  // the second try applies each execution in its own savepoint
  await completeBatch(db, batch, config, undefined, kvCompletionEffects);
  t.is(await entry("good"), "1");
  t.is(await db.oneFirst(sql.unsafe`SELECT status FROM executions WHERE id = ${good.row.id}`), "succeeded");
  const failed = (await db.one(sql.unsafe`SELECT status, error FROM executions WHERE id = ${bad.row.id}`)) as any;
  t.is(failed.status, "failed");
  t.is(failed.error.message, "the execution's KV writes could not be committed");
});
