// Scripts of an app. Viewers read them; editors create, change and delete them. A source that does
// not compile is refused with 422 and the compiler's message; changing the source or a limit bumps
// the version.
import { Hono } from "hono";
import { z } from "zod";
import { appAccess } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { createScript, deleteScript, listScripts, updateScript } from "../../../lib/scripts/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { scriptAccess } from "./access.ts";
import { body, caller, page, type AdminEnv } from "./http.ts";

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be 1-100 characters of letters, digits, _ . -");
const source = z.string().min(1, "must not be empty");
const timeoutMs = z.number({ invalid_type_error: "must be an integer" }).int("must be an integer").min(1, "must be from 1 to 300000").max(300_000, "must be from 1 to 300000");
const memoryMb = z.number({ invalid_type_error: "must be an integer" }).int("must be an integer").min(1, "must be from 1 to 1024").max(1024, "must be from 1 to 1024");

export const newScript = z.object({ name, source, timeout_ms: timeoutMs.optional(), memory_mb: memoryMb.optional() }).strict();
export const scriptChanges = newScript.partial();

export function scriptRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.post("/admin/apps/:app/scripts", async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.edit);
    const input = await body(c, newScript);
    return c.json(await createScript(db, app.id, input), 201);
  });

  api.get("/admin/apps/:app/scripts", async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listScripts(db, app.id, page(c)));
  });

  api.get("/admin/scripts/:id", async (c) => {
    const who = caller(c, "read");
    const { script } = await scriptAccess(db, who, c.req.param("id"), NEEDS.read);
    return c.json(script);
  });

  api.patch("/admin/scripts/:id", async (c) => {
    const who = caller(c, "write");
    const { script } = await scriptAccess(db, who, c.req.param("id"), NEEDS.edit);
    const input = await body(c, scriptChanges);
    return c.json(await updateScript(db, script.id, input));
  });

  api.delete("/admin/scripts/:id", async (c) => {
    const who = caller(c, "write");
    const { script } = await scriptAccess(db, who, c.req.param("id"), NEEDS.edit);
    await deleteScript(db, script.id);
    return c.body(null, 204);
  });

  return api;
}
