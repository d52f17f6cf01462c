// Writing to the store: the writes and the outbox rows of the triggers they fire, in the caller's
// transaction: one round trip applies the writes and matches the triggers, one enqueues their rows.
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { enqueueKvMatches, KV_TRIGGER_MATCH, type Cause, type KvEvent, type KvMatch, type TriggerEnv } from "../triggers/fire.ts";
import { compareKeys } from "./limits.ts";

/** One write, already validated (lib/kv/limits.ts). `json` null is a delete. */
export type KvWrite = { appId: string; collection: string; key: string; json: string | null; ttlSecs: number | null; cause: Cause };
export type KvWriteResult = { op: KvEvent["op"]; oldJson: string | null } | null;

const applied = z.object({
  idx: z.number(),
  op: z.enum(["insert", "update", "delete"]),
  old_value: z.string().nullable(),
  trigger_id: z.string().nullable(),
  script_id: z.string().nullable(),
  retry: z.unknown(),
});

/**
 * Applies writes and fires the triggers they match: one statement applies them (kv_apply) and
 * matches the app's triggers to what each write did; one more enqueues the matches' rows. Writes
 * are applied in a stable order of (app, collection, key): concurrent batches lock keys in the
 * same order (no deadlocks between them), while writes to one key keep their order. Returns what
 * each write did (null: a delete of an absent key, which fires nothing).
 */
export async function applyKvWrites(tx: Pick<Db, "any" | "query" | "oneFirst">, writes: KvWrite[], env: TriggerEnv): Promise<KvWriteResult[]> {
  if (!writes.length) return [];
  const order = writes.map((w, i) => ({ w, i, sortKey: `${w.appId}\u0000${w.collection}\u0000${w.key}` }));
  order.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  const apps = sql.array(order.map((o) => o.w.appId), "uuid");
  const collections = sql.array(order.map((o) => o.w.collection), "text");
  const rows = await tx.any(sql.type(applied)`
    WITH a AS MATERIALIZED (
      SELECT * FROM kv_apply(${apps}, ${collections}, ${sql.array(order.map((o) => o.w.key), "text")},
                             ${sql.array(order.map((o) => o.w.json), "text")}, ${sql.array(order.map((o) => o.w.ttlSecs), "int4")})),
    e AS (
      SELECT a.idx, a.op, a.old_value, w.app_id, w.collection
      FROM a JOIN unnest(${apps}, ${collections}) WITH ORDINALITY AS w(app_id, collection, idx) ON w.idx = a.idx)
    SELECT e.idx, e.op, e.old_value::text AS old_value, t.id AS trigger_id, t.script_id, t.retry
    FROM e LEFT JOIN triggers t ON ${KV_TRIGGER_MATCH}
    ORDER BY e.idx, t.created_at, t.id`);
  const results: KvWriteResult[] = writes.map(() => null);
  const events = new Map<number, KvEvent & { i: number }>();
  const matches: (KvMatch & { i: number })[] = [];
  for (const r of rows) {
    const { w, i } = order[r.idx - 1]!;
    let event = events.get(r.idx);
    if (!event) {
      results[i] = { op: r.op, oldJson: r.old_value };
      event = {
        i,
        appId: w.appId,
        op: r.op,
        collection: w.collection,
        key: w.key,
        value: r.op === "delete" || w.json === null ? null : JSON.parse(w.json),
        oldValue: r.old_value === null ? null : JSON.parse(r.old_value),
        cause: w.cause,
      };
      events.set(r.idx, event);
    }
    if (r.trigger_id) matches.push({ i, event, triggerId: r.trigger_id, scriptId: r.script_id!, retry: r.retry });
  }
  // Rows in the order the writes were made (they still run in no guaranteed order).
  matches.sort((a, b) => a.i - b.i);
  if (matches.length) await enqueueKvMatches(tx, matches, env);
  return results;
}
