// User routes (SPEC section 4): match, then write an outbox row. Sync waits for the reply on
// its own channel (sync.ts); async answers 202 once the row is committed.
import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { ValidationError } from "../../lib/errors.ts";
import type { ScriptRequest } from "../../lib/executor/index.ts";
import { enqueueOnce, type NewOutboxRow } from "../../lib/outbox/index.ts";
import * as metrics from "../../lib/metrics/index.ts";
import { matchRoute } from "../../lib/routes/index.ts";
import type { GatewayDeps } from "./deps.ts";
import { note, notedFor } from "./request-log.ts";
import { syncRunner } from "./sync.ts";

export function userRoutes(deps: GatewayDeps): Hono {
  const app = new Hono();
  const { db, config, log } = deps;
  const runSync = syncRunner(deps);

  app.all("*", async (c) => {
    const table = await deps.routes.get().catch(() => null);
    if (!table) {
      c.header("Retry-After", "1");
      return c.json({ error: "unavailable", message: "the route table cannot be loaded" }, 503);
    }
    const hit = matchRoute(table, { host: c.req.header("host") ?? "", method: c.req.method, path: c.req.path });
    if (!hit) return c.json({ error: "not_found" }, 404);
    const route = hit.route;
    const request = await scriptRequest(c, hit.params);
    const id = randomUUID();
    const row: NewOutboxRow & { routeId: string } = {
      id,
      kind: route.dispatch_mode === "sync" ? "http_sync" : "http_async",
      appId: route.app_id,
      scriptId: route.script_id,
      routeId: route.id,
      payload: { request },
      rootExecutionId: id,
    };
    note(c, { app: route.app_slug, script: route.script_name, execution_id: id });
    if (route.dispatch_mode === "sync") {
      const started = performance.now();
      const res = await runSync(c, route, row);
      metrics.syncRequestDuration.observe({ outcome: notedFor(c).outcome ?? "unknown" }, (performance.now() - started) / 1000);
      return res;
    }

    // Async: the trigger retry policy (SPEC section 6 defaults); an Idempotency-Key returns the
    // first execution accepted for this route and key in the last 24 hours.
    row.retry = { max_attempts: config.retryMaxAttempts, backoff: config.retryBackoff, base_ms: config.retryBaseMs, jitter_pct: config.retryJitterPct };
    const key = c.req.header("idempotency-key");
    if (key !== undefined && (key.length < 1 || key.length > 255)) throw new ValidationError("Idempotency-Key", "must be 1 to 255 characters");
    try {
      const r = key !== undefined ? await enqueueOnce(db, row, key) : { acceptedAt: await deps.enqueue(row), executionId: id };
      note(c, { execution_id: r.executionId, outcome: "accepted" });
      return c.json({ accepted_at: r.acceptedAt, execution_id: r.executionId }, 202);
    } catch (err) {
      // Not accepted (or not known to be: a retry with the same Idempotency-Key is safe).
      log.warn({ err: String(err), route_id: route.id }, "could not enqueue an async execution");
      note(c, { outcome: "unavailable" });
      c.header("Retry-After", "1");
      return c.json({ error: "unavailable", message: "the database is unreachable" }, 503);
    }
  });

  return app;
}

/** ctx.request: JSON bodies parsed, other bodies as text; the first value of each query key. */
async function scriptRequest(c: Context, params: Record<string, string>): Promise<ScriptRequest> {
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((v, k) => (headers[k] = v));
  const query: Record<string, string> = {};
  for (const [k, v] of new URL(c.req.url).searchParams) if (!(k in query)) query[k] = v;
  let body: unknown = null;
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const text = await c.req.text();
    if (text !== "") {
      if (/^application\/(.+\+)?json\b/i.test(headers["content-type"] ?? "")) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new ValidationError("body", "not valid JSON (Content-Type says JSON)");
        }
      } else body = text;
    }
  }
  return { method: c.req.method, path: c.req.path, query, headers, body, params };
}
