// Dead letters against a real Postgres, written through the outbox's exhausted-attempts seam
// (recordExhausted): their fields, dead-letter triggers fired in the same transaction, handler
// failures marking the original, the admin endpoints (list/filter/page, count, show, replay,
// resolve) with conflicts and the role matrix, and retention by the sweeper.
import { randomUUID } from "node:crypto";
import test from "ava";
import { loadConfig } from "../lib/config.ts";
import { sql } from "../lib/db/pool.ts";
import { recordExhausted } from "../lib/dead-letters/index.ts";
import { createLogger } from "../lib/log.ts";
import { enqueue, type ClaimedRow, type Finished } from "../lib/outbox/index.ts";
import { sweepOnce } from "../services/sweeper/sweep.ts";
import { scopedToken, startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
let scriptId: string;
let handlerId: string;
const V1 = "/api/v1/admin";
const DL = `${V1}/apps/shop/dead-letters`;
const env = { config: loadConfig({ PICLOUD_MAX_TRIGGER_DEPTH: "4" }), log: createLogger("test", "silent") };

test.before(async () => {
  g = await startGateway();
  T = await team(g, "shop");
  scriptId = (await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "failing", source: "export default () => { throw new Error('x') }" })).body.id;
  handlerId = (await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "handler", source: "export default (ctx) => ctx.event" })).body.id;
});
test.after.always(() => g?.close());

/** A row whose last attempt failed, as the outbox hands it to the seam. */
function exhausted(over: Partial<ClaimedRow> = {}, message = "boom"): Finished {
  const id = randomUUID();
  return {
    row: {
      id,
      kind: "kv",
      app_id: T.appId,
      app_slug: "shop",
      script_id: scriptId,
      script_name: "failing",
      source: null,
      version: 1,
      timeout_ms: 5000,
      memory_mb: 32,
      route_id: null,
      trigger_id: randomUUID(),
      payload: { event: { type: "kv", op: "insert", collection: "c", key: "k", value: 1, old_value: null } },
      reply_to: null,
      attempts: 3,
      max_attempts: 3,
      retry: { backoff: "linear", base_ms: 10, jitter_pct: 0 },
      trigger_depth: 1,
      root_execution_id: randomUUID(),
      first_failed_at: new Date(Date.now() - 5000).toISOString(),
      created_at: new Date(Date.now() - 6000).toISOString(),
      claimed_by: "dispatcher-test",
      claimed_at: new Date().toISOString(),
      ...over,
    } as ClaimedRow,
    outcome: { ok: false, error: { code: "script_error", message }, logs: [], durationMs: 1 },
    startedAt: new Date(),
  };
}
const record = (items: Finished[]) => g.db.transaction((tx) => recordExhausted(env)(tx, items));
const letterOf = async (executionId: string) => (await g.db.one(sql.unsafe`SELECT id FROM dead_letters WHERE execution_id = ${executionId}`)) as { id: string };

test.serial("a dead letter keeps payload, attempts, last error, first/last failure times, trigger and script; dead-letter triggers fire in the same transaction", async (t) => {
  const trig = await g.api(T.appAdmin.token).post(`${V1}/apps/shop/triggers/dead_letter`, { script_id: handlerId, retry: { max_attempts: 2 } });
  t.is(trig.status, 201);
  const f = exhausted();
  // rolled back with the completion: neither the dead letter nor the trigger's row
  await t.throwsAsync(
    g.db.transaction(async (tx) => {
      await recordExhausted(env)(tx, [f]);
      throw new Error("completion failed");
    }),
  );
  t.is(await g.db.maybeOne(sql.unsafe`SELECT id FROM dead_letters WHERE execution_id = ${f.row.id}`), null);
  t.is(Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE trigger_id = ${trig.body.id}`)), 0);

  await record([f]);
  const { id } = await letterOf(f.row.id);
  const shown = await g.api(T.viewer.token).get(`${DL}/${id}`);
  t.is(shown.status, 200);
  t.like(shown.body, {
    id,
    app_id: T.appId,
    execution_id: f.row.id,
    kind: "kv",
    script_id: scriptId,
    trigger_id: f.row.trigger_id,
    attempts: 3,
    max_attempts: 3,
    last_error: { code: "script_error", message: "boom" },
    payload: f.row.payload,
    resolution: null,
    trigger_depth: 1,
    root_execution_id: f.row.root_execution_id,
    first_failed_at: f.row.first_failed_at,
  });
  t.true(Date.parse(shown.body.last_failed_at) > Date.parse(shown.body.first_failed_at));
  const rows = await g.db.any(sql.unsafe`SELECT kind, payload, trigger_depth, root_execution_id, max_attempts FROM outbox WHERE trigger_id = ${trig.body.id}`);
  t.is(rows.length, 1);
  const row = rows[0] as any;
  t.like(row, { kind: "dead_letter", trigger_depth: 2, root_execution_id: f.row.root_execution_id, max_attempts: 2 });
  t.deepEqual(row.payload.event, {
    type: "dead_letter",
    dead_letter_id: id,
    original: {
      execution_id: f.row.id,
      kind: "kv",
      script_id: scriptId,
      trigger_id: f.row.trigger_id,
      route_id: null,
      payload: f.row.payload,
      trigger_depth: 1,
      root_execution_id: f.row.root_execution_id,
    },
    attempts: 3,
    last_error: { code: "script_error", message: "boom" },
    first_failed_at: shown.body.first_failed_at,
    last_failed_at: shown.body.last_failed_at,
  });
  // past the depth limit: no trigger row, counted
  const deep = exhausted({ trigger_depth: 4 });
  await record([deep]);
  t.is(Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM outbox WHERE trigger_id = ${trig.body.id}`)), 1);
  t.is((await g.api(T.viewer.token).get(`${V1}/apps/shop/triggers/stats`)).body.depth_exceeded, 1);

  // a dead-letter handler that ran out of attempts: no new dead letter; the original is marked, with the handler's error
  const before = Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM dead_letters`));
  await record([exhausted({ kind: "dead_letter", trigger_id: trig.body.id, payload: { event: row.payload.event } }, "handler broke")]);
  t.is(Number(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM dead_letters`)), before);
  t.like((await g.api(T.viewer.token).get(`${DL}/${id}`)).body, { resolution: "handler_failed", handler_error: { code: "script_error", message: "handler broke" } });
  // still unresolved: it counts, and it can be replayed or resolved
  t.true((await g.api(T.viewer.token).get(`${DL}?resolution=handler_failed`)).body.items.some((d: { id: string }) => d.id === id));
  await g.api(T.appAdmin.token).delete(`${V1}/apps/shop/triggers/${trig.body.id}`);
  await g.db.query(sql.unsafe`DELETE FROM outbox WHERE trigger_id = ${trig.body.id}`);
});

test.serial("list newest first, filtered by resolution, paged; count of unresolved; replay and resolve change both", async (t) => {
  await g.db.query(sql.unsafe`DELETE FROM dead_letters`);
  const made = [exhausted(), exhausted(), exhausted(), exhausted()];
  for (const f of made) await record([f]);
  const ids = await Promise.all(made.map(async (f) => (await letterOf(f.row.id)).id));
  t.deepEqual((await g.api(T.viewer.token).get(`${DL}/count`)).body, { unresolved: 4 });

  const listed: string[] = [];
  let cursor: string | null = null;
  do {
    const r: any = await g.api(T.viewer.token).get(`${DL}?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    listed.push(...r.body.items.map((d: { id: string }) => d.id));
    cursor = r.body.cursor;
  } while (cursor);
  t.deepEqual(listed, [...ids].reverse());

  // replay: a new outbox row with the original lineage, depth, trigger and policy; the dead letter is replayed
  const replayed = await g.api(T.appAdmin.token).post(`${DL}/${ids[0]}/replay`);
  t.is(replayed.status, 200);
  t.like(replayed.body, { id: ids[0], resolution: "replayed", resolved_by: T.appAdmin.id });
  t.truthy(Date.parse(replayed.body.resolved_at));
  const row = (await g.db.one(sql.unsafe`SELECT kind, script_id, trigger_id, payload, trigger_depth, root_execution_id, max_attempts, retry, attempts FROM outbox WHERE id = ${replayed.body.replay_execution_id}`)) as any;
  t.like(row, { kind: "replay", script_id: scriptId, trigger_id: made[0]!.row.trigger_id, trigger_depth: 1, root_execution_id: made[0]!.row.root_execution_id, max_attempts: 3, attempts: 0 });
  t.deepEqual(row.payload, made[0]!.row.payload);
  t.deepEqual(row.retry, { backoff: "linear", base_ms: 10, jitter_pct: 0 });
  t.is((await g.api(T.appAdmin.token).post(`${DL}/${ids[0]}/replay`)).status, 409);
  t.regex((await g.api(T.appAdmin.token).post(`${DL}/${ids[0]}/resolve`)).body.message, /already replayed/);

  const resolved = await g.api(T.owner).post(`${DL}/${ids[1]}/resolve`);
  t.is(resolved.status, 200);
  t.like(resolved.body, { resolution: "ignored", resolved_by: (await g.db.oneFirst(sql.unsafe`SELECT id FROM users WHERE is_owner`)) as string });
  t.is((await g.api(T.owner).post(`${DL}/${ids[1]}/resolve`)).status, 409);
  t.is((await g.api(T.owner).post(`${DL}/${ids[1]}/replay`)).status, 409);

  await g.db.query(sql.unsafe`UPDATE dead_letters SET resolution = 'handler_failed' WHERE id = ${ids[2]!}`);
  t.deepEqual((await g.api(T.viewer.token).get(`${DL}/count`)).body, { unresolved: 2 });
  const by = async (q: string) => (await g.api(T.viewer.token).get(`${DL}?resolution=${q}`)).body.items.map((d: { id: string }) => d.id).sort();
  t.deepEqual(await by("unresolved"), [ids[2], ids[3]].sort());
  t.deepEqual(await by("none"), [ids[3]]);
  t.deepEqual(await by("replayed"), [ids[0]]);
  t.deepEqual(await by("ignored"), [ids[1]]);
  t.deepEqual(await by("handler_failed"), [ids[2]]);
  t.deepEqual(await by("all"), [...ids].sort());
  t.is((await g.api(T.viewer.token).get(`${DL}?resolution=open`)).body.field, "resolution");
  t.is((await g.api(T.viewer.token).get(`${DL}?cursor=zz`)).body.field, "cursor");
  // a handler_failed one can still be replayed
  t.is((await g.api(T.appAdmin.token).post(`${DL}/${ids[2]}/replay`)).status, 200);
  t.deepEqual((await g.api(T.viewer.token).get(`${DL}/count`)).body, { unresolved: 1 });
  // a dead letter whose script was deleted cannot be replayed
  const gone = (await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "short-lived", source: "export default () => 1" })).body.id;
  const orphan = exhausted({ script_id: gone });
  await record([orphan]);
  await g.api(T.editor.token).delete(`${V1}/scripts/${gone}`);
  const orphanId = (await letterOf(orphan.row.id)).id;
  t.like((await g.api(T.viewer.token).get(`${DL}/${orphanId}`)).body, { script_id: null });
  t.regex((await g.api(T.appAdmin.token).post(`${DL}/${orphanId}/replay`)).body.message, /its script was deleted/);
  await g.db.query(sql.unsafe`DELETE FROM outbox WHERE app_id = ${T.appId}`);
});

test.serial("roles: viewers read; replay and resolve need app_admin; another app's dead letters are not found; scopes narrow", async (t) => {
  const f = exhausted();
  await record([f]);
  const id = (await letterOf(f.row.id)).id;
  for (const [who, token, read, write] of [
    ["viewer", T.viewer.token, 200, 403],
    ["editor", T.editor.token, 200, 403],
    ["outsider", T.outsider.token, 404, 404],
  ] as const) {
    for (const path of [DL, `${DL}/count`, `${DL}/${id}`]) t.is((await g.api(token).get(path)).status, read, `${who} GET ${path}`);
    t.is((await g.api(token).post(`${DL}/${id}/replay`)).status, write, `${who} replay`);
    t.is((await g.api(token).post(`${DL}/${id}/resolve`)).status, write, `${who} resolve`);
  }
  t.is((await g.api().get(DL)).status, 401);
  const readOnly = await scopedToken(g, T.appAdmin.token, ["read"]);
  t.is((await g.api(readOnly).get(`${DL}/${id}`)).status, 200);
  t.is((await g.api(readOnly).post(`${DL}/${id}/resolve`)).status, 403);
  t.is((await g.api(T.appAdmin.token).post(`${DL}/${id}/resolve`)).status, 200);
  // another app: its dead letters are not reachable through this one, and vice versa
  const elsewhere = (await g.api(T.outsider.token).post(`${V1}/apps`, { slug: "other-dl", name: "o" })).body.id;
  const otherScript = (await g.api(T.outsider.token).post(`${V1}/apps/other-dl/scripts`, { name: "s", source: "export default () => 1" })).body.id;
  const theirs = exhausted({ app_id: elsewhere, script_id: otherScript });
  await record([theirs]);
  const theirId = (await letterOf(theirs.row.id)).id;
  for (const path of [`${DL}/${theirId}`]) t.is((await g.api(T.appAdmin.token).get(path)).status, 404);
  t.is((await g.api(T.appAdmin.token).post(`${DL}/${theirId}/replay`)).status, 404);
  t.is((await g.api(T.appAdmin.token).post(`${DL}/${theirId}/resolve`)).status, 404);
  t.is((await g.api(T.owner).get(`${DL}/not-a-uuid`)).status, 404);
  t.false((await g.api(T.owner).get(`${DL}?limit=200`)).body.items.some((d: { id: string }) => d.id === theirId));
  t.is((await g.api(T.outsider.token).get(`${V1}/apps/other-dl/dead-letters/${theirId}`)).status, 200);
  t.deepEqual((await g.api(T.outsider.token).get(`${V1}/apps/other-dl/dead-letters/count`)).body, { unresolved: 1 });
});

test.serial("retention: the sweeper deletes dead letters older than PICLOUD_DEAD_LETTER_RETENTION_DAYS and expired KV keys", async (t) => {
  const old = exhausted();
  const recent = exhausted();
  await record([old, recent]);
  await g.db.query(sql.unsafe`UPDATE dead_letters SET created_at = now() - interval '11 days' WHERE execution_id = ${old.row.id}`);
  await g.db.query(sql.unsafe`
    INSERT INTO kv_entries (app_id, collection, key, value, expires_at)
    VALUES (${T.appId}, 'ttl', 'gone', '1', now() - interval '1 second'), (${T.appId}, 'ttl', 'kept', '1', now() + interval '1 hour')`);
  const r = await sweepOnce(g.db, loadConfig({ PICLOUD_DEAD_LETTER_RETENTION_DAYS: "10" }), createLogger("test", "silent"));
  t.true(r.ran);
  t.true(r.deleted.dead_letters! >= 1);
  t.is(r.deleted.kv_entries, 1);
  t.is(await g.db.maybeOne(sql.unsafe`SELECT id FROM dead_letters WHERE execution_id = ${old.row.id}`), null);
  t.truthy(await g.db.maybeOne(sql.unsafe`SELECT id FROM dead_letters WHERE execution_id = ${recent.row.id}`));
  t.deepEqual(await g.db.anyFirst(sql.unsafe`SELECT key FROM kv_entries WHERE app_id = ${T.appId} AND collection = 'ttl'`), ["kept"]);
});

test.serial("the sweeper's recovered claims on their last attempt become dead letters too (its exhausted seam)", async (t) => {
  const id = randomUUID();
  const root = randomUUID();
  await enqueue(g.db, [{ id, kind: "kv", appId: T.appId, scriptId, triggerId: randomUUID(), payload: { event: { type: "kv", op: "insert" } }, retry: { max_attempts: 2, backoff: "constant", base_ms: 0, jitter_pct: 0 }, triggerDepth: 2, rootExecutionId: root }]);
  // claimed by a dispatcher that is gone, on its last attempt, lease run out
  await g.db.query(sql.unsafe`UPDATE outbox SET claimed_by = 'dispatcher-gone', attempts = 2, lease_until = now() - interval '1 second' WHERE id = ${id}`);
  const r = await sweepOnce(g.db, loadConfig({}), createLogger("test", "silent"), recordExhausted(env));
  t.is(r.recovered, 1);
  t.is(await g.db.maybeOne(sql.unsafe`SELECT id FROM outbox WHERE id = ${id}`), null);
  const letter = (await g.db.one(sql.unsafe`SELECT kind, attempts, trigger_depth, root_execution_id, last_error FROM dead_letters WHERE execution_id = ${id}`)) as any;
  t.like(letter, { kind: "kv", attempts: 2, trigger_depth: 2, root_execution_id: root, last_error: { code: "internal" } });
  t.regex(letter.last_error.message, /dispatcher running it stopped/);
});
