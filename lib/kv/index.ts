// The key-value store (SPEC section 5): kv_entries belongs to this folder. Reads in store.ts,
// writes (with the triggers they fire) in apply.ts, an execution's buffered view in session.ts,
// the script SDK in sdk.ts, and the limits in limits.ts.
import type { Db } from "../db/pool.ts";
import type { TriggerEnv } from "../triggers/fire.ts";
import { applyKvWrites, type KvWriteResult } from "./apply.ts";

export * from "./limits.ts";
export * from "./store.ts";
export * from "./apply.ts";
export { commitExecutionWrites, kvCompletionEffects, type KvCall, type KvContext } from "./session.ts";
export { kvModule } from "./sdk.ts";

/**
 * A write made through the admin API: applied at once, with the triggers it fires, in one
 * transaction. Its events start a new lineage at depth 0. `json` null deletes.
 */
export async function writeNow(db: Pick<Db, "transaction">, env: TriggerEnv, appId: string, collection: string, key: string, json: string | null, ttlSecs: number | null): Promise<KvWriteResult> {
  return db.transaction(async (tx) => {
    const [result] = await applyKvWrites(tx, [{ appId, collection, key, json, ttlSecs, cause: { depth: 0, rootExecutionId: null, executionId: null, scriptId: null } }], env);
    return result ?? null;
  });
}
