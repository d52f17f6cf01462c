import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { appAccess } from "../../../lib/apps/index.ts";
import { NotFoundError } from "../../../lib/errors.ts";
import { listAbandoned } from "../../../lib/executions/abandoned.ts";
import { getExecution, listExecutions, recordExecutions } from "../../../lib/executions/index.ts";
import { parseLimit } from "../../../lib/pagination.ts";
import { getScript } from "../../../lib/scripts/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, type AdminEnv } from "./http.ts";

const directRequest = z
  .object({
    request: z
      .object({
        method: z.string().toUpperCase().default("POST"),
        path: z.string().startsWith("/", "must start with /").default("/"),
        query: z.record(z.string()).default({}),
        headers: z.record(z.string()).default({}),
        body: z.unknown().default(null),
        params: z.record(z.string()).default({}),
      })
      .default({}),
    event: z.unknown().optional(),
  })
  .strict();

export function executionRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db } = deps;
  const api = new Hono<AdminEnv>();
  api.get("/admin/apps/:app/executions", async (c) => {
    const app = await appAccess(db, caller(c, "read"), { ref: c.req.param("app") }, "viewer");
    return c.json(
      await listExecutions(db, app.id, { limit: parseLimit(c.req.query("limit")), cursor: c.req.query("cursor"), status: c.req.query("status"), scriptId: c.req.query("script_id") }),
    );
  });
  api.get("/admin/apps/:app/abandoned-executions", async (c) => {
    const app = await appAccess(db, caller(c, "read"), { ref: c.req.param("app") }, "viewer");
    return c.json(await listAbandoned(db, app.id, parseLimit(c.req.query("limit")), c.req.query("cursor")));
  });
  api.get("/admin/executions/:id", async (c) => {
    const who = caller(c, "read");
    const execution = (await getExecution(db, c.req.param("id"))) ?? (await deps.pendingExecution?.(c.req.param("id"))) ?? null;
    if (!execution) throw new NotFoundError("execution");
    await appAccess(db, who, { id: execution.app_id }, "viewer", "execution");
    return c.json(execution);
  });

  // Direct run for development: no outbox, no retries; recorded like any execution.
  api.post("/execute/:script", async (c) => {
    const script = await getScript(db, c.req.param("script"));
    const app = await appAccess(db, caller(c, "execute"), { id: script.app_id }, "editor", "script");
    const input = await body(c, directRequest);
    const id = randomUUID();
    const queuedAt = new Date();
    const outcome = await deps.executor.run(
      {
        executionId: id,
        script: { id: script.id, name: script.name, source: script.source, version: script.version, timeoutMs: script.timeout_ms, memoryMb: script.memory_mb },
        app: { id: app.id, slug: app.slug },
        request: { ...input.request, body: input.request.body ?? null },
        ...(input.event !== undefined ? { event: input.event } : {}),
        triggerDepth: 0,
      },
      { appId: app.id, executionId: id, principal: c.get("principal") },
    );
    await recordExecutions(db, [
      {
        id,
        appId: app.id,
        scriptId: script.id,
        kind: "direct",
        triggerDepth: 0,
        attempts: 1,
        queuedAt,
        startedAt: queuedAt,
        durationMs: outcome.durationMs,
        logs: outcome.logs,
        ...(outcome.ok ? { response: outcome.response } : { error: outcome.error }),
      },
    ]);
    return c.json({
      execution_id: id,
      status: outcome.ok ? "succeeded" : "failed",
      ...(outcome.ok ? { response: outcome.response } : { error: outcome.error }),
      logs: outcome.logs,
      duration_ms: outcome.durationMs,
    });
  });
  return api;
}
