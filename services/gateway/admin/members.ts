// App members and their roles (viewer < editor < app_admin). Members of an app see its member
// list; app_admins (and the owner) add, change and remove members.
import { Hono } from "hono";
import { z } from "zod";
import { appAccess, listMembers, removeMember, setMember } from "../../../lib/apps/index.ts";
import { ROLES } from "../../../lib/auth/roles.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, page, type AdminEnv } from "./http.ts";

export function memberRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.get("/admin/apps/:app/members", async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listMembers(db, app.id, page(c)));
  });

  api.put("/admin/apps/:app/members/:user", async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.members);
    const input = await body(c, z.object({ role: z.enum(ROLES) }).strict());
    return c.json(await setMember(db, app.id, c.req.param("user"), input.role));
  });

  api.delete("/admin/apps/:app/members/:user", async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.members);
    await removeMember(db, app.id, c.req.param("user"));
    return c.body(null, 204);
  });

  return api;
}
