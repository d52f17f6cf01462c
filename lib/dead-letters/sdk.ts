// The script SDK's `dead_letters` global (SPEC section 6), as an executor HostModule:
//   dead_letters.list({ resolution, limit, cursor }?) → { items, cursor }
//   dead_letters.replay(id) → the dead letter (replayed)      dead_letters.resolve(id) → the dead letter (ignored)
// Refused unless the execution runs as a principal with app_admin on its app (or the owner): a
// triggered execution runs as the user who registered its trigger, a direct run as its caller,
// a public HTTP execution as no one. Each call takes effect at once (it is not held back until
// the execution completes, unlike KV writes); replaying or resolving twice is refused.
import { z } from "zod";
import type { Config } from "../config.ts";
import { sql, type Db } from "../db/pool.ts";
import { DomainError } from "../errors.ts";
import { SdkError, type HostModule } from "../executor/types.ts";
import { isUuid } from "../ids.ts";
import { decodeCursor } from "../pagination.ts";
import { listDeadLetters, parseResolution, replayDeadLetter, resolveDeadLetter } from "./index.ts";

const PRELUDE = String.raw`(() => {
  const host = globalThis.__host;
  const id = (where, v) => {
    if (typeof v !== "string" || v === "") throw new TypeError(where + ": the dead letter id must be a non-empty string");
    return v;
  };
  globalThis.dead_letters = Object.freeze({
    list: async (filter) => host("dead_letters.list", [filter === undefined ? null : filter]),
    replay: async (dl) => host("dead_letters.replay", [id("dead_letters.replay", dl)]),
    resolve: async (dl) => host("dead_letters.resolve", [id("dead_letters.resolve", dl)]),
  });
})()`;

/** What the module needs from the host `call`: the app, the execution, and (direct runs) the caller. */
type DlCall = { appId: string; executionId: string; triggerDepth?: number; principal?: { userId: string } | null };

function asCall(call: unknown): DlCall {
  const c = call as Partial<DlCall> | null;
  if (!c || typeof c !== "object" || typeof c.appId !== "string" || typeof c.executionId !== "string") throw new Error("dead_letters: the execution context has no app");
  return c as DlCall;
}

const LIST_MAX = 200;

export type DeadLettersContext = {
  db: Db;
  config: Pick<Config, "retryMaxAttempts" | "retryBackoff" | "retryBaseMs" | "retryJitterPct" | "maxTriggerDepth">;
};

export function deadLettersModule(ctx: DeadLettersContext): HostModule<unknown> {
  const { db } = ctx;

  /** The user the execution runs as: the direct run's caller, else its trigger's creator (an outbox row's). */
  async function runsAs(call: DlCall): Promise<string | null> {
    if (call.principal !== undefined) return call.principal?.userId ?? null;
    return db.maybeOneFirst(sql.type(z.object({ created_by: z.string().nullable() }))`
      SELECT t.created_by FROM outbox o JOIN triggers t ON t.id = o.trigger_id AND t.app_id = o.app_id
      WHERE o.id = ${call.executionId} AND o.app_id = ${call.appId}`);
  }

  async function authorized(where: string, raw: unknown): Promise<{ call: DlCall; userId: string }> {
    const call = asCall(raw);
    const userId = await runsAs(call);
    if (!userId) throw new SdkError(`${where}: this execution runs as no one (a public HTTP request); only executions of a trigger registered by an app_admin, or direct runs by one, may manage dead letters`);
    const ok = await db.oneFirst(sql.type(z.object({ ok: z.boolean() }))`
      SELECT coalesce((SELECT is_owner FROM users WHERE id = ${userId}), false)
          OR EXISTS (SELECT 1 FROM app_members WHERE app_id = ${call.appId} AND user_id = ${userId} AND role = 'app_admin') AS ok`);
    if (!ok) throw new SdkError(`${where}: the user this execution runs as is not an app_admin of this app`);
    return { call, userId };
  }

  /** Domain errors (not found, conflict, bad filter) become the script's error. */
  const exposed = async <T>(where: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DomainError) throw new SdkError(`${where}: ${err.message}`);
      throw err;
    }
  };
  const idOf = (where: string, v: unknown): string => {
    if (typeof v !== "string" || !isUuid(v)) throw new SdkError(`${where}: the dead letter id must be a dead letter's id`);
    return v;
  };

  return {
    name: "dead_letters",
    prelude: PRELUDE,
    handlers: {
      "dead_letters.list": async (raw, args) => {
        const { call } = await authorized("dead_letters.list", raw);
        const filter = (args[0] ?? {}) as Record<string, unknown>;
        if (typeof filter !== "object" || Array.isArray(filter)) throw new SdkError("dead_letters.list: the filter must be an object");
        for (const k of Object.keys(filter)) if (!["resolution", "limit", "cursor"].includes(k)) throw new SdkError(`dead_letters.list: unknown filter ${JSON.stringify(k)} (known: resolution, limit, cursor)`);
        const limit = filter.limit ?? 50;
        if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > LIST_MAX) throw new SdkError(`dead_letters.list: limit must be an integer from 1 to ${LIST_MAX}`);
        if (filter.cursor !== undefined && filter.cursor !== null && typeof filter.cursor !== "string") throw new SdkError("dead_letters.list: cursor must be a string");
        return exposed("dead_letters.list", async () => {
          const cursor = (filter.cursor as string | null | undefined) ?? undefined;
          if (cursor !== undefined) decodeCursor(cursor, (k) => k.length === 2);
          return listDeadLetters(db, call.appId, { limit, cursor, resolution: parseResolution(filter.resolution) });
        });
      },
      "dead_letters.replay": async (raw, args) => {
        const { call, userId } = await authorized("dead_letters.replay", raw);
        const id = idOf("dead_letters.replay", args[0]);
        return exposed("dead_letters.replay", () => replayDeadLetter(db, call.appId, id, { by: userId, config: ctx.config, minDepth: (call.triggerDepth ?? 0) + 1 }));
      },
      "dead_letters.resolve": async (raw, args) => {
        const { call, userId } = await authorized("dead_letters.resolve", raw);
        const id = idOf("dead_letters.resolve", args[0]);
        return exposed("dead_letters.resolve", () => resolveDeadLetter(db, call.appId, id, userId));
      },
    },
  };
}
