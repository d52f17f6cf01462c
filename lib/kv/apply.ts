// Writing to the store: the writes and the outbox rows of the triggers they fire, in the caller's
// transaction (one round trip for the writes, one to match triggers, one to enqueue).
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import { fireKvTriggers, type Cause, type KvEvent, type TriggerEnv } from "../triggers/fire.ts";
import { compareKeys } from "./limits.ts";

/** One write, already validated (lib/kv/limits.ts). `json` null is a delete. */
export type KvWrite = { appId: string; collection: string; key: string; json: string | null; ttlSecs: number | null; cause: Cause };
export type KvWriteResult = { op: KvEvent["op"]; oldJson: string | null } | null;

const applied = z.object({ idx: z.number(), op: z.enum(["insert", "update", "delete"]), old_value: z.string().nullable() });

/**
 * Applies writes and fires the triggers they match. Writes are applied in a stable order of
 * (app, collection, key): concurrent batches lock keys in the same order (no deadlocks between
 * them), while writes to one key keep their order. Returns what each write did (null: a delete
 * of an absent key, which fires nothing).
 */
export async function applyKvWrites(tx: Pick<Db, "any" | "query" | "oneFirst">, writes: KvWrite[], env: TriggerEnv): Promise<KvWriteResult[]> {
  if (!writes.length) return [];
  const order = writes.map((w, i) => ({ w, i, sortKey: `${w.appId}\u0000${w.collection}\u0000${w.key}` }));
  order.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  const rows = await tx.any(sql.type(applied)`
    SELECT idx, op, old_value::text AS old_value FROM kv_apply(
      ${sql.array(order.map((o) => o.w.appId), "uuid")}, ${sql.array(order.map((o) => o.w.collection), "text")},
      ${sql.array(order.map((o) => o.w.key), "text")}, ${sql.array(order.map((o) => o.w.json), "text")},
      ${sql.array(order.map((o) => o.w.ttlSecs), "int4")})`);
  const results: KvWriteResult[] = writes.map(() => null);
  const events: (KvEvent & { i: number })[] = [];
  for (const r of rows) {
    const { w, i } = order[r.idx - 1]!;
    results[i] = { op: r.op, oldJson: r.old_value };
    events.push({
      i,
      appId: w.appId,
      op: r.op,
      collection: w.collection,
      key: w.key,
      value: r.op === "delete" || w.json === null ? null : JSON.parse(w.json),
      oldValue: r.old_value === null ? null : JSON.parse(r.old_value),
      cause: w.cause,
    });
  }
  // Events in the order the writes were made (their rows still run in no guaranteed order).
  events.sort((a, b) => a.i - b.i);
  await fireKvTriggers(tx, events, env);
  return results;
}
