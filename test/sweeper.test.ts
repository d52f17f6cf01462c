// The sweeper pass on its own: retention, and several sweepers never overlapping.
import test from "ava";
import { z } from "zod";
import { loadConfig } from "../lib/config.ts";
import { createDb, sql } from "../lib/db/pool.ts";
import { createLogger } from "../lib/log.ts";
import { OUTBOX_VACUUM_MIN_DEAD, vacuumOutbox } from "../lib/outbox/index.ts";
import { RETENTION_BATCH, SWEEP_LOCK, sweepOnce } from "../services/sweeper/sweep.ts";
import { freshDatabase } from "./helpers/db.ts";

test("retention deletes what is older than its setting and keeps the rest", async (t) => {
  const { url } = await freshDatabase();
  const db = await createDb(url);
  t.teardown(() => db.end());
  const config = loadConfig({ PICLOUD_EXECUTION_LOG_RETENTION_DAYS: "7", PICLOUD_ABANDONED_EXECUTIONS_RETENTION_DAYS: "3" });
  const app = await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('r', 'R') RETURNING id`);
  const exec = (age: string) => sql.unsafe`
    INSERT INTO executions (id, app_id, kind, status, queued_at, finished_at)
    VALUES (gen_random_uuid(), ${app as string}, 'direct', 'succeeded', now() - ${age}::interval, now() - ${age}::interval)`;
  await db.query(exec("8 days"));
  await db.query(exec("6 days"));
  const abandoned = (age: string) => sql.unsafe`
    INSERT INTO abandoned_executions (id, app_id, request, status, queued_at, completed_at)
    VALUES (gen_random_uuid(), ${app as string}, '{}', 'succeeded', now() - ${age}::interval, now() - ${age}::interval)`;
  await db.query(abandoned("4 days"));
  await db.query(abandoned("2 days"));
  await db.query(sql.unsafe`INSERT INTO idempotency_keys (route_id, key, execution_id, created_at) VALUES (gen_random_uuid(), 'old', gen_random_uuid(), now() - interval '25 hours'), (gen_random_uuid(), 'new', gen_random_uuid(), now())`);
  await db.query(sql.unsafe`INSERT INTO dispatchers (id, host, pid, concurrency, heartbeat_at) VALUES ('gone', 'h', 1, 1, now() - interval '2 hours'), ('here', 'h', 2, 1, now())`);

  const r = await sweepOnce(db, config, createLogger("sweeper-test", "silent"));
  t.true(r.ran);
  t.like(r.deleted, { executions: 1, abandoned_executions: 1, idempotency_keys: 1, dispatchers: 1 });
  t.is(Number(await db.oneFirst(sql.unsafe`SELECT count(*) FROM executions`)), 1);
  t.is(Number(await db.oneFirst(sql.unsafe`SELECT count(*) FROM abandoned_executions`)), 1);
  t.is(await db.oneFirst(sql.unsafe`SELECT key FROM idempotency_keys`), "new");
  t.is(await db.oneFirst(sql.unsafe`SELECT id FROM dispatchers`), "here");
});

test("two sweepers at once: one pass runs, the other skips", async (t) => {
  const { url } = await freshDatabase();
  const a = await createDb(url);
  const b = await createDb(url);
  t.teardown(async () => {
    await a.end();
    await b.end();
  });
  const config = loadConfig({});
  const log = createLogger("sweeper-test", "silent");
  // hold the first pass open inside its transaction while the second one tries
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const first = a.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT pg_advisory_xact_lock(${SWEEP_LOCK})`);
    await held;
  });
  await new Promise((r) => setTimeout(r, 100));
  const second = await sweepOnce(b, config, log);
  t.false(second.ran);
  release();
  await first;
  t.true((await sweepOnce(b, config, log)).ran);
});

test("retention deletes at most RETENTION_BATCH rows per table and pass; the next pass goes on", async (t) => {
  const { url } = await freshDatabase();
  const db = await createDb(url);
  t.teardown(() => db.end());
  const app = await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('b', 'B') RETURNING id`);
  await db.query(sql.unsafe`
    INSERT INTO executions (id, app_id, kind, status, queued_at, finished_at)
    SELECT gen_random_uuid(), ${app as string}, 'direct', 'succeeded', now() - interval '30 days', now() - interval '30 days'
    FROM generate_series(1, ${RETENTION_BATCH + 10})`);
  const config = loadConfig({});
  const log = createLogger("sweeper-test", "silent");
  t.is((await sweepOnce(db, config, log)).deleted.executions, RETENTION_BATCH);
  t.is((await sweepOnce(db, config, log)).deleted.executions, 10);
  t.is(Number(await db.oneFirst(sql.unsafe`SELECT count(*) FROM executions`)), 0);
});

test("vacuumOutbox: leaves a quiet outbox alone; vacuums once dead row versions pile up", async (t) => {
  const { url } = await freshDatabase();
  const db = await createDb(url);
  t.teardown(() => db.end());
  const app = (await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('v', 'V') RETURNING id`)) as string;
  const script = (await db.oneFirst(sql.unsafe`INSERT INTO scripts (app_id, name, source) VALUES (${app}, 's', 'export default () => 1') RETURNING id`)) as string;
  // Autovacuum coming by meanwhile would take the dead rows this test counts.
  await db.query(sql.unsafe`ALTER TABLE outbox SET (autovacuum_enabled = false)`);
  const stat = () =>
    db.one(sql.type(z.object({ dead: z.number(), vacuums: z.number() }))`
      SELECT n_dead_tup::int AS dead, vacuum_count::int AS vacuums FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass`);
  // Rows come and go as executions do; the session's statistics are sent at once.
  const churn = (n: number) =>
    db.connect(async (c) => {
      await c.query(sql.unsafe`INSERT INTO outbox (id, kind, app_id, script_id, payload) SELECT gen_random_uuid(), 'http_async', ${app}, ${script}, '{}' FROM generate_series(1, ${n})`);
      await c.query(sql.unsafe`DELETE FROM outbox`);
      await c.query(sql.unsafe`SELECT pg_stat_force_next_flush()`);
    });
  const until = async (ok: (s: { dead: number; vacuums: number }) => boolean) => {
    for (let i = 0; i < 100 && !ok(await stat()); i++) await new Promise((r) => setTimeout(r, 50));
  };

  await churn(10);
  await until((s) => s.dead >= 10);
  t.false(await vacuumOutbox(db));
  t.is((await stat()).vacuums, 0);

  await churn(OUTBOX_VACUUM_MIN_DEAD);
  await until((s) => s.dead >= OUTBOX_VACUUM_MIN_DEAD);
  t.true(await vacuumOutbox(db));
  t.like(await stat(), { dead: 0, vacuums: 1 });
});
