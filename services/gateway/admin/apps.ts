// Apps, addressed by id or slug. Any signed-in user (write scope) may create one and becomes its
// app_admin; each caller lists the apps they are a member of (the owner: all). Renaming and
// deleting need app_admin.
import { Hono } from "hono";
import { z } from "zod";
import { appAccess, createApp, deleteApp, listApps, updateApp } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { isUuid } from "../../../lib/ids.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, page, type AdminEnv } from "./http.ts";

/** A slug is never shaped like an id, so `{app}` in a path is unambiguous. */
export const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 characters of a-z, 0-9 and -, starting with a letter or digit")
  .refine((s) => !isUuid(s), "must not look like an id");
const appName = z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters");

export function appRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.post("/admin/apps", async (c) => {
    const who = caller(c, "write");
    const input = await body(c, z.object({ slug, name: appName }).strict());
    return c.json(await createApp(db, who, input), 201);
  });

  api.get("/admin/apps", async (c) => {
    const who = caller(c, "read");
    return c.json(await listApps(db, who, page(c)));
  });

  api.get("/admin/apps/:app", async (c) => {
    const who = caller(c, "read");
    return c.json(await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read));
  });

  api.patch("/admin/apps/:app", async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.app);
    const input = await body(c, z.object({ slug: slug.optional(), name: appName.optional() }).strict());
    return c.json({ ...(await updateApp(db, app.id, input)), role: app.role });
  });

  api.delete("/admin/apps/:app", async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.app);
    await deleteApp(db, app.id);
    return c.body(null, 204);
  });

  return api;
}
