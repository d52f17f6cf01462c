// Firing triggers: inside the transaction that makes the change (a KV write, a dead letter), the
// app's enabled matching triggers become outbox rows, so the change and its events commit or
// roll back together. A row deeper than PICLOUD_MAX_TRIGGER_DEPTH is dropped: a warning, a
// count per app (trigger_drops), no dead letter.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Config } from "../config.ts";
import { sql, type Db } from "../db/pool.ts";
import type { Logger } from "../log.ts";
import * as metrics from "../metrics/index.ts";
import { enqueue, type NewOutboxRow, type OutboxKind } from "../outbox/enqueue.ts";
import { effectivePolicy, type RetryDefaults } from "./policy.ts";

export type TriggerEnv = { config: RetryDefaults & Pick<Config, "maxTriggerDepth">; log: Logger };
type Tx = Pick<Db, "any" | "query" | "oneFirst">;

/**
 * What caused a change. `depth` is what the rows it fires get (the causing execution's depth + 1;
 * 0 for a change made through the admin API); `rootExecutionId` their lineage (null: each row is
 * its own root).
 */
export type Cause = { depth: number; rootExecutionId: string | null; executionId: string | null; scriptId: string | null };

export type KvEvent = {
  appId: string;
  op: "insert" | "update" | "delete";
  collection: string;
  key: string;
  value: unknown;
  oldValue: unknown;
  cause: Cause;
};

const matchRow = z.object({ i: z.number(), trigger_id: z.string(), script_id: z.string(), retry: z.unknown() });

/**
 * The rule of a kv trigger matching an event, as a join condition between `triggers t` and a row
 * `e` with app_id, collection and op: enabled, the op listed, and the glob `*`, `prefix*` (a
 * trailing `*` always means a prefix) or the exact collection name.
 */
export const KV_TRIGGER_MATCH = sql.fragment`t.app_id = e.app_id AND t.kind = 'kv' AND t.enabled AND e.op = ANY (t.ops)
  AND (t.collection_glob = '*' OR t.collection_glob = e.collection
       OR (right(t.collection_glob, 1) = '*' AND starts_with(e.collection, left(t.collection_glob, -1))))`;

export type KvMatch = { event: KvEvent; triggerId: string; scriptId: string; retry: unknown };

/** Outbox rows for kv triggers already matched to their events (see KV_TRIGGER_MATCH). */
export async function enqueueKvMatches(tx: Tx, matches: KvMatch[], env: TriggerEnv): Promise<{ enqueued: number; dropped: number }> {
  return enqueueFired(
    tx,
    matches.map(({ event: e, triggerId, scriptId, retry }) => ({
      appId: e.appId,
      kind: "kv" as const,
      triggerId,
      scriptId,
      retry,
      cause: e.cause,
      event: { type: "kv", op: e.op, collection: e.collection, key: e.key, value: e.value ?? null, old_value: e.oldValue ?? null },
    })),
    env,
  );
}

/** Outbox rows for every enabled kv trigger matching each event (one round trip to match). */
export async function fireKvTriggers(tx: Tx, events: KvEvent[], env: TriggerEnv): Promise<{ enqueued: number; dropped: number }> {
  if (!events.length) return { enqueued: 0, dropped: 0 };
  const matches = await tx.any(sql.type(matchRow)`
    SELECT e.i::int AS i, t.id AS trigger_id, t.script_id, t.retry
    FROM unnest(${sql.array(events.map((e) => e.appId), "uuid")}, ${sql.array(events.map((e) => e.collection), "text")},
                ${sql.array(events.map((e) => e.op), "text")}) WITH ORDINALITY AS e(app_id, collection, op, i)
    JOIN triggers t ON ${KV_TRIGGER_MATCH}
    ORDER BY e.i, t.created_at, t.id`);
  return enqueueKvMatches(tx, matches.map((m) => ({ event: events[m.i - 1]!, triggerId: m.trigger_id, scriptId: m.script_id, retry: m.retry })), env);
}

export type DeadLetterEvent = { appId: string; event: Record<string, unknown>; cause: Cause };

/** Outbox rows for every enabled dead_letter trigger of each dead letter's app. */
export async function fireDeadLetterTriggers(tx: Tx, letters: DeadLetterEvent[], env: TriggerEnv): Promise<{ enqueued: number; dropped: number }> {
  if (!letters.length) return { enqueued: 0, dropped: 0 };
  const matches = await tx.any(sql.type(matchRow)`
    SELECT e.i::int AS i, t.id AS trigger_id, t.script_id, t.retry
    FROM unnest(${sql.array(letters.map((l) => l.appId), "uuid")}) WITH ORDINALITY AS e(app_id, i)
    JOIN triggers t ON t.app_id = e.app_id AND t.kind = 'dead_letter' AND t.enabled
    ORDER BY e.i, t.created_at, t.id`);
  return enqueueFired(
    tx,
    matches.map((m) => {
      const l = letters[m.i - 1]!;
      return { appId: l.appId, kind: "dead_letter" as const, triggerId: m.trigger_id, scriptId: m.script_id, retry: m.retry, cause: l.cause, event: l.event };
    }),
    env,
  );
}

type Fired = { appId: string; kind: OutboxKind; triggerId: string; scriptId: string; retry: unknown; cause: Cause; event: unknown };

async function enqueueFired(tx: Tx, fired: Fired[], env: TriggerEnv): Promise<{ enqueued: number; dropped: number }> {
  const rows: NewOutboxRow[] = [];
  const dropped: Fired[] = [];
  for (const f of fired) {
    if (f.cause.depth > env.config.maxTriggerDepth) {
      dropped.push(f);
      continue;
    }
    const id = randomUUID();
    rows.push({
      id,
      kind: f.kind,
      appId: f.appId,
      scriptId: f.scriptId,
      triggerId: f.triggerId,
      payload: { event: f.event },
      retry: effectivePolicy(f.retry, env.config),
      triggerDepth: f.cause.depth,
      rootExecutionId: f.cause.rootExecutionId ?? id,
    });
  }
  if (rows.length) await enqueue(tx, rows);
  if (dropped.length) await countDropped(tx, dropped, env);
  return { enqueued: rows.length, dropped: dropped.length };
}

async function countDropped(tx: Tx, dropped: Fired[], env: TriggerEnv): Promise<void> {
  for (const f of dropped) {
    env.log.warn(
      {
        app_id: f.appId,
        script_id: f.scriptId,
        trigger_id: f.triggerId,
        root_execution_id: f.cause.rootExecutionId,
        caused_by_execution_id: f.cause.executionId,
        caused_by_script_id: f.cause.scriptId,
        depth: f.cause.depth,
        max_depth: env.config.maxTriggerDepth,
      },
      "trigger row dropped: past the maximum trigger depth",
    );
  }
  const perApp = new Map<string, { n: number; root: string | null }>();
  for (const f of dropped) perApp.set(f.appId, { n: (perApp.get(f.appId)?.n ?? 0) + 1, root: f.cause.rootExecutionId });
  const apps = [...perApp.keys()].sort();
  await tx.query(sql.unsafe`
    INSERT INTO trigger_drops (app_id, depth_exceeded, last_dropped_at, last_root_execution_id)
    SELECT app_id, n, now(), root FROM unnest(${sql.array(apps, "uuid")}, ${sql.array(apps.map((a) => perApp.get(a)!.n), "int8")},
                                              ${sql.array(apps.map((a) => perApp.get(a)!.root), "uuid")}) AS x(app_id, n, root)
    ON CONFLICT (app_id) DO UPDATE SET depth_exceeded = trigger_drops.depth_exceeded + excluded.depth_exceeded,
      last_dropped_at = excluded.last_dropped_at, last_root_execution_id = excluded.last_root_execution_id`);
  for (const f of dropped) metrics.countAfterCommit(f.cause.executionId, () => metrics.triggerDepthExceeded.inc());
}
