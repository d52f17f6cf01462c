// Triggers of an app (SPEC sections 6 and 7): KV triggers and dead-letter triggers. Viewers
// read them; only app_admin (and the owner) may create, enable, disable or delete them. A
// triggered execution runs as the user who created its trigger.
import { Hono } from "hono";
import { z } from "zod";
import { appAccess } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { ValidationError } from "../../../lib/errors.ts";
import {
  createTrigger,
  deleteTrigger,
  effectivePolicy,
  getTrigger,
  KV_OPS,
  listTriggers,
  retryOverride,
  setTriggerEnabled,
  triggerStats,
  type Trigger,
  type TriggerKind,
} from "../../../lib/triggers/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, page, type AdminContext, type AdminEnv } from "./http.ts";

const scriptId = z.string({ invalid_type_error: "must be a script id" });
export const newKvTrigger = z
  .object({
    script_id: scriptId,
    collection_glob: z.string({ invalid_type_error: "must be a string: *, prefix* or a collection name" }),
    ops: z.array(z.enum(KV_OPS), { invalid_type_error: "must be an array of insert, update, delete" }).min(1, "must list at least one of insert, update, delete"),
    retry: retryOverride.optional(),
  })
  .strict();
export const newDeadLetterTrigger = z.object({ script_id: scriptId, retry: retryOverride.optional() }).strict();

export function triggerRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db, config } = deps;
  const api = new Hono<AdminEnv>();
  const base = "/admin/apps/:app/triggers";
  /** The trigger with the policy its rows are enqueued with (override over the defaults). */
  const shown = (t: Trigger) => ({ ...t, effective_retry: effectivePolicy(t.retry, config) });

  api.post(`${base}/kv`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.triggers);
    const input = await body(c, newKvTrigger);
    const t = await createTrigger(db, app.id, who.userId, { kind: "kv", scriptId: input.script_id, collectionGlob: input.collection_glob, ops: input.ops, retry: input.retry });
    return c.json(shown(t), 201);
  });

  api.post(`${base}/dead_letter`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.triggers);
    const input = await body(c, newDeadLetterTrigger);
    return c.json(shown(await createTrigger(db, app.id, who.userId, { kind: "dead_letter", scriptId: input.script_id, retry: input.retry })), 201);
  });

  const list = (kind: TriggerKind | undefined) => async (c: AdminContext) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") ?? "" }, NEEDS.read);
    const k = kind ?? c.req.query("kind");
    if (k !== undefined && k !== "kv" && k !== "dead_letter") throw new ValidationError("kind", "must be kv or dead_letter");
    const r = await listTriggers(db, app.id, { ...page(c), kind: k });
    return c.json({ items: r.items.map(shown), cursor: r.cursor });
  };
  api.get(base, list(undefined));
  api.get(`${base}/kv`, list("kv"));
  api.get(`${base}/dead_letter`, list("dead_letter"));

  api.get(`${base}/stats`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await triggerStats(db, app.id));
  });

  api.get(`${base}/:id`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(shown(await getTrigger(db, app.id, c.req.param("id"))));
  });

  for (const [action, enabled] of [["enable", true], ["disable", false]] as const) {
    api.post(`${base}/:id/${action}`, async (c) => {
      const who = caller(c, "write");
      const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.triggers);
      return c.json(shown(await setTriggerEnabled(db, app.id, c.req.param("id"), enabled)));
    });
  }

  api.delete(`${base}/:id`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.triggers);
    await deleteTrigger(db, app.id, c.req.param("id"));
    return c.body(null, 204);
  });

  return api;
}
