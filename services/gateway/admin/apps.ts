import { Hono } from "hono";
import { z } from "zod";
import { appAccess, createApp, deleteApp, listApps, listMembers, removeMember, setMember, updateApp } from "../../../lib/apps/index.ts";
import { ROLES } from "../../../lib/auth/roles.ts";
import { parseLimit } from "../../../lib/pagination.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, type AdminEnv } from "./http.ts";

export const slug = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 characters of a-z, 0-9 and -, starting with a letter or digit");
const appName = z.string().trim().min(1, "must not be empty").max(200);

export function appRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();
  api.post("/admin/apps", async (c) => {
    const who = caller(c, "write");
    const input = await body(c, z.object({ slug, name: appName }));
    return c.json(await createApp(db, who, input), 201);
  });
  api.get("/admin/apps", async (c) => {
    const who = caller(c, "read");
    return c.json(await listApps(db, who, parseLimit(c.req.query("limit")), c.req.query("cursor")));
  });
  api.get("/admin/apps/:app", async (c) => {
    return c.json(await appAccess(db, caller(c, "read"), { ref: c.req.param("app") }, "viewer"));
  });
  api.patch("/admin/apps/:app", async (c) => {
    const app = await appAccess(db, caller(c, "write"), { ref: c.req.param("app") }, "app_admin");
    const input = await body(c, z.object({ slug: slug.optional(), name: appName.optional() }).strict());
    return c.json({ ...(await updateApp(db, app.id, input)), role: app.role });
  });
  api.delete("/admin/apps/:app", async (c) => {
    const app = await appAccess(db, caller(c, "write"), { ref: c.req.param("app") }, "app_admin");
    await deleteApp(db, app.id);
    return c.body(null, 204);
  });

  api.get("/admin/apps/:app/members", async (c) => {
    const app = await appAccess(db, caller(c, "read"), { ref: c.req.param("app") }, "viewer");
    return c.json({ items: await listMembers(db, app.id), cursor: null });
  });
  api.put("/admin/apps/:app/members/:user", async (c) => {
    const app = await appAccess(db, caller(c, "write"), { ref: c.req.param("app") }, "app_admin");
    const input = await body(c, z.object({ role: z.enum(ROLES) }));
    return c.json(await setMember(db, app.id, c.req.param("user"), input.role));
  });
  api.delete("/admin/apps/:app/members/:user", async (c) => {
    const app = await appAccess(db, caller(c, "write"), { ref: c.req.param("app") }, "app_admin");
    await removeMember(db, app.id, c.req.param("user"));
    return c.body(null, 204);
  });
  return api;
}
