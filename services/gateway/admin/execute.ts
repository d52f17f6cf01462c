// POST /api/v1/execute/{script_id}: a direct run for development. No outbox, no retries: the
// script runs in this process's executor and the result is the answer (HTTP 200 whether the
// script succeeded or failed). Needs the execute scope and editor on the script's app; the run
// is recorded as an execution of kind "direct".
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { recordExecution } from "../../../lib/executions/index.ts";
import { commitExecutionWrites } from "../../../lib/kv/index.ts";
import * as metrics from "../../../lib/metrics/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { note } from "../request-log.ts";
import { scriptAccess } from "./access.ts";
import { body, caller, type AdminEnv } from "./http.ts";

const directRun = z
  .object({
    request: z
      .object({
        method: z.string().regex(/^[A-Za-z]{1,20}$/, "must be an HTTP method").toUpperCase().default("POST"),
        path: z.string().startsWith("/", "must start with /").default("/"),
        query: z.record(z.string()).default({}),
        headers: z.record(z.string()).default({}),
        body: z.unknown().default(null),
        params: z.record(z.string()).default({}),
      })
      .strict()
      .default({}),
    event: z.unknown().optional(),
  })
  .strict();

export function executeRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db } = deps;
  const api = new Hono<AdminEnv>();

  api.post("/execute/:script", async (c) => {
    const who = caller(c, "execute");
    const { script, app } = await scriptAccess(db, who, c.req.param("script"), NEEDS.edit);
    const input = await body(c, directRun);
    const id = randomUUID();
    const queuedAt = new Date();
    // SDK modules keep per-execution state by this object; the KV writes commit with the record.
    const call = { appId: app.id, executionId: id, principal: c.get("principal") };
    const run = {
      call,
      outcome: await deps.executor.run(
        {
          executionId: id,
          script: { id: script.id, name: script.name, source: script.source, version: script.version, timeoutMs: script.timeout_ms, memoryMb: script.memory_mb },
          app: { id: app.id, slug: app.slug },
          request: { ...input.request, body: input.request.body ?? null },
          ...(input.event !== undefined ? { event: input.event } : {}),
          triggerDepth: 0,
        },
        call,
      ),
    };
    // What the run's writes count (trigger rows dropped past the depth) is counted once this commits.
    await metrics.settling(() => [id], () => db.transaction(async (tx) => {
      await commitExecutionWrites(tx, [run], { isolate: true });
      const outcome = run.outcome;
      await recordExecution(tx, {
        id,
        appId: app.id,
        scriptId: script.id,
        kind: "direct",
        triggerDepth: 0,
        rootExecutionId: id,
        attempts: 1,
        queuedAt,
        startedAt: queuedAt,
        durationMs: outcome.durationMs,
        logs: outcome.logs,
        ...(outcome.ok ? { response: outcome.response } : { error: outcome.error }),
      });
    }));
    const outcome = run.outcome;
    metrics.countExecution("direct", outcome);
    note(c, { app: app.slug, script: script.name, execution_id: id, outcome: outcome.ok ? "succeeded" : outcome.error.code });
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
