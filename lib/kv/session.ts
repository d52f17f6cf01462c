// An execution's view of the store. Its writes are buffered here, seen by its own later reads
// (read-your-writes), and applied only when the execution completes successfully, in the same
// transaction that completes it (lib/outbox/complete.ts calls commitExecutionWrites): a script
// that throws, times out or is retried leaves no write and no trigger event behind, and a
// completion that is not ours (the claim was recovered) applies nothing. Reads go to the
// committed store (READ COMMITTED, one statement each) overlaid with the buffer.
import type { Db } from "../db/pool.ts";
import { SdkError, type ExecutionOutcome } from "../executor/types.ts";
import type { Logger } from "../log.ts";
import { rolledBack } from "../metrics/index.ts";
import type { CompletionEffects } from "../outbox/complete.ts";
import type { TriggerEnv } from "../triggers/fire.ts";
import { applyKvWrites, type KvWrite } from "./apply.ts";
import { compareKeys, MAX_WRITE_BYTES_PER_EXECUTION, MAX_WRITES_PER_EXECUTION } from "./limits.ts";
import { readRange, readValue } from "./store.ts";

/**
 * The execution context the kv module needs from its host `call` (the dispatcher's and the direct
 * run's both carry it). The executor runs an execution again from the start only when it made no
 * host call yet, so a session never holds writes of an abandoned run.
 */
export type KvCall = { appId: string; executionId: string; triggerDepth?: number; rootExecutionId?: string | null; scriptId?: string | null };

/** A host `call` as the kv module needs it; anything else is a platform bug, not a script error. */
export function asKvCall(call: unknown): KvCall {
  const c = call as Partial<KvCall> | null;
  if (!c || typeof c !== "object" || typeof c.appId !== "string" || typeof c.executionId !== "string") throw new Error("kv: the execution context has no app");
  return c as KvCall;
}

export type KvContext = { db: Db; env: TriggerEnv };

type Buffered = { json: string | null; expiresAtMs: number | null };

const id = (collection: string, key: string) => `${collection}\u0000${key}`;

export class KvSession {
  writes: { collection: string; key: string; json: string | null; ttlSecs: number | null }[] = [];
  private overlay = new Map<string, Buffered & { collection: string; key: string }>();
  private bytes = 0;

  constructor(
    readonly ctx: KvContext,
    readonly call: KvCall,
  ) {}

  private live(b: Buffered): boolean {
    return b.json !== null && (b.expiresAtMs === null || b.expiresAtMs > Date.now());
  }

  /** The JSON text of a key as this execution sees it (null: absent). */
  async read(collection: string, key: string): Promise<string | null> {
    const b = this.overlay.get(id(collection, key));
    if (b) return this.live(b) ? b.json : null;
    return readValue(this.ctx.db, this.call.appId, collection, key);
  }

  buffer(collection: string, key: string, json: string | null, ttlSecs: number | null): void {
    if (this.writes.length >= MAX_WRITES_PER_EXECUTION) throw new SdkError(`kv: an execution may make at most ${MAX_WRITES_PER_EXECUTION} writes`);
    const size = (json?.length ?? 0) + key.length + collection.length;
    if (this.bytes + size > MAX_WRITE_BYTES_PER_EXECUTION) {
      throw new SdkError(`kv: an execution's writes may total at most ${MAX_WRITE_BYTES_PER_EXECUTION} bytes`);
    }
    this.bytes += size;
    this.writes.push({ collection, key, json, ttlSecs });
    this.overlay.set(id(collection, key), { collection, key, json, expiresAtMs: ttlSecs === null ? null : Date.now() + ttlSecs * 1000 });
  }

  /**
   * One page of live keys after `after`, starting with `prefix`: the committed keys merged with
   * the buffer. Fetches enough committed rows that the buffered keys it shadows cannot shorten
   * the page. Returns `limit` items and whether more follow.
   */
  async range(collection: string, prefix: string, after: string | null, limit: number): Promise<{ items: { key: string; json: string }[]; more: boolean }> {
    const touched = [...this.overlay.values()].filter(
      (b) => b.collection === collection && b.key.startsWith(prefix) && (after === null || compareKeys(b.key, after) > 0),
    );
    const fetch = limit + touched.length + 1;
    const rows = await readRange(this.ctx.db, this.call.appId, collection, { after, prefix, limit: fetch });
    const shadowed = new Set(touched.map((b) => b.key));
    const merged = rows.filter((r) => !shadowed.has(r.key)).map((r) => ({ key: r.key, json: r.json }));
    for (const b of touched) if (this.live(b)) merged.push({ key: b.key, json: b.json! });
    merged.sort((a, b) => compareKeys(a.key, b.key));
    return { items: merged.slice(0, limit), more: merged.length > limit };
  }
}

const sessions = new WeakMap<object, KvSession>();

export function sessionFor(ctx: KvContext, call: KvCall): KvSession {
  let s = sessions.get(call);
  if (!s) {
    s = new KvSession(ctx, call);
    sessions.set(call, s);
  }
  return s;
}

// ---- commit ----

export type Committable = { call?: unknown; outcome: ExecutionOutcome };
type Tx = Pick<Db, "any" | "query" | "oneFirst" | "transaction">;

/** Calls whose batch once failed to apply for a reason that will not go away: next time, one savepoint each. */
const suspects = new WeakSet<object>();

/**
 * Applies the buffered writes of successful executions (and fires their triggers) inside the
 * transaction that completes them. The happy path is one batch for all; if a batch fails for a
 * reason that a retry would not fix, the caller's transaction fails, and on its retry each
 * execution applies in its own savepoint: one whose writes still cannot apply is turned into a
 * failure (its outcome is replaced), the others commit. Transient failures (deadlock,
 * connection) are thrown for the caller to retry the whole completion.
 */
export async function commitExecutionWrites(tx: Tx, items: Committable[], opts: { isolate?: boolean; log?: Logger } = {}): Promise<void> {
  const pending = items.flatMap((item) => {
    const s = item.outcome.ok && item.call && typeof item.call === "object" ? sessions.get(item.call) : undefined;
    return s && s.writes.length ? [{ item, s }] : [];
  });
  if (!pending.length) return;
  const writesOf = (s: KvSession): KvWrite[] => {
    const cause = {
      depth: (s.call.triggerDepth ?? 0) + 1,
      rootExecutionId: s.call.rootExecutionId ?? s.call.executionId,
      executionId: s.call.executionId,
      scriptId: s.call.scriptId ?? null,
    };
    return s.writes.map((w) => ({ appId: s.call.appId, ...w, cause }));
  };
  const env = pending[0]!.s.ctx.env;
  if (!opts.isolate && !pending.some((p) => suspects.has(p.item.call as object))) {
    try {
      await applyKvWrites(tx, pending.flatMap((p) => writesOf(p.s)), env);
      return;
    } catch (err) {
      if (!isTransient(err)) for (const p of pending) suspects.add(p.item.call as object);
      throw err;
    }
  }
  for (const p of pending) {
    try {
      await tx.transaction((sp) => applyKvWrites(sp, writesOf(p.s), p.s.ctx.env));
    } catch (err) {
      if (isTransient(err)) throw err;
      rolledBack([p.s.call.executionId]); // its savepoint is gone, and what it counted with it
      (opts.log ?? env.log).error({ err, execution_id: p.s.call.executionId }, "an execution's KV writes could not be applied");
      p.item.outcome = {
        ok: false,
        error: { code: "internal", message: "the execution's KV writes could not be committed" },
        logs: p.item.outcome.logs,
        durationMs: p.item.outcome.durationMs,
      };
    }
  }
}

/** A failure worth retrying as is: anything but a data, integrity, syntax or program-limit error. */
function isTransient(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const name = (e as { name?: string }).name ?? "";
    if (/IntegrityConstraintViolationError|InvalidInputError|InputSyntaxError|DataIntegrityError/.test(name)) return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return !/^(22|23|2F|42|54|P0|XX)/.test(code);
  }
  return true;
}

/** Whether an execution buffered any write. */
export const hasWrites = (call: unknown): boolean => !!call && typeof call === "object" && (sessions.get(call)?.writes.length ?? 0) > 0;

/** The dispatcher's completion hook: buffered writes commit with the completion (lib/outbox/complete.ts). */
export const kvCompletionEffects: CompletionEffects = {
  pending: (items) => items.filter((f) => hasWrites(f.call)),
  commit: (tx, items) => commitExecutionWrites(tx, items),
};
