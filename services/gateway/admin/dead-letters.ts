// Dead letters of an app (SPEC sections 6 and 7): list (filter by resolution, paged), count of
// unresolved ones, show, replay, resolve. Viewers read; replay and resolve need app_admin, the
// same right a script needs to do them through the dead_letters SDK.
import { Hono } from "hono";
import { appAccess } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { countUnresolved, getDeadLetter, listDeadLetters, parseResolution, replayDeadLetter, resolveDeadLetter } from "../../../lib/dead-letters/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { caller, page, type AdminEnv } from "./http.ts";

export function deadLetterRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db, config } = deps;
  const api = new Hono<AdminEnv>();
  const base = "/admin/apps/:app/dead-letters";

  api.get(base, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listDeadLetters(db, app.id, { ...page(c), resolution: parseResolution(c.req.query("resolution")) }));
  });

  api.get(`${base}/count`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json({ unresolved: await countUnresolved(db, app.id) });
  });

  api.get(`${base}/:id`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await getDeadLetter(db, app.id, c.req.param("id")));
  });

  api.post(`${base}/:id/replay`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.deadLetters);
    return c.json(await replayDeadLetter(db, app.id, c.req.param("id"), { by: who.userId, config }));
  });

  api.post(`${base}/:id/resolve`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.deadLetters);
    return c.json(await resolveDeadLetter(db, app.id, c.req.param("id"), who.userId));
  });

  return api;
}
