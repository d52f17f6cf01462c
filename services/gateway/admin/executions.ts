// Executions of an app: the list (newest first, without response and logs) and one execution
// with its console lines. An execution still in the outbox (queued or running) is read from
// there. Another app's execution is "not found".
import { Hono } from "hono";
import { appAccess } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { NotFoundError } from "../../../lib/errors.ts";
import { listAbandoned } from "../../../lib/executions/abandoned.ts";
import { getExecution, listExecutions } from "../../../lib/executions/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { caller, page, type AdminEnv } from "./http.ts";

export function executionRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db } = deps;
  const api = new Hono<AdminEnv>();

  api.get("/admin/apps/:app/executions", async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listExecutions(db, app.id, { ...page(c), status: c.req.query("status"), scriptId: c.req.query("script_id") }));
  });

  api.get("/admin/apps/:app/abandoned-executions", async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listAbandoned(db, app.id, page(c)));
  });

  api.get("/admin/executions/:id", async (c) => {
    const who = caller(c, "read");
    const id = c.req.param("id");
    const execution = (await getExecution(db, id)) ?? (await deps.pendingExecution?.(id)) ?? null;
    if (!execution) throw new NotFoundError("execution");
    await appAccess(db, who, { id: execution.app_id }, NEEDS.read, "execution");
    return c.json(execution);
  });

  return api;
}
