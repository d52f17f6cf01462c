// User routes (SPEC section 4): match, then write an outbox row. Sync waits for the reply on
// its own channel; async answers 202 once the row is committed.
import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { ValidationError } from "../../lib/errors.ts";
import type { ScriptRequest } from "../../lib/executor/index.ts";
import { abandonSync, availability, enqueue, enqueueOnce, type NewOutboxRow } from "../../lib/outbox/index.ts";
import { matchRoute, type RouteTarget } from "../../lib/routes/index.ts";
import type { GatewayDeps } from "./deps.ts";
import { replyChannelFor, type Reply } from "./replies.ts";

/** How much longer than the script's timeout a sync caller waits (SPEC: timeout + 2 s). */
const REPLY_GRACE_MS = 2000;

const ERROR_STATUS = { invalid_script: 422, script_error: 502, timeout: 504, memory_limit: 507, internal: 500 } as const;

export function userRoutes(deps: GatewayDeps): Hono {
  const app = new Hono();
  const { db, log, config } = deps;
  const staleMs = config.heartbeatMs * 3;

  // 503 decisions read a snapshot at most 500 ms old, not the database on every request.
  let snapshot: { at: number; value: Promise<{ alive: number; backlog: number }> } | undefined;
  const capacity = () => {
    if (!snapshot || Date.now() - snapshot.at > 500) {
      const value = availability(db, staleMs);
      value.catch(() => (snapshot = undefined));
      snapshot = { at: Date.now(), value };
    }
    return snapshot.value;
  };

  app.all("*", async (c) => {
    const table = await deps.routes.get();
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

    if (route.dispatch_mode === "async") {
      row.retry = { max_attempts: config.retryMaxAttempts, backoff: config.retryBackoff, base_ms: config.retryBaseMs, jitter_pct: config.retryJitterPct };
      const key = c.req.header("idempotency-key");
      if (key !== undefined) {
        if (key.length < 1 || key.length > 255) throw new ValidationError("Idempotency-Key", "must be 1 to 255 characters");
        const r = await enqueueOnce(db, row, key);
        return c.json({ accepted_at: r.acceptedAt, execution_id: r.executionId }, 202);
      }
      const acceptedAt = await enqueue(db, [row]);
      return c.json({ accepted_at: acceptedAt, execution_id: id }, 202);
    }
    return runSync(c, route, row);
  });

  async function runSync(c: Context, route: RouteTarget, row: NewOutboxRow): Promise<Response> {
    const cap = await capacity();
    if (cap.alive === 0 || cap.backlog >= config.maxBacklog) {
      c.header("Retry-After", "1");
      return c.json({ error: "unavailable", message: cap.alive === 0 ? "no dispatcher is running" : "the backlog is over its limit" }, 503);
    }
    const id = row.id;
    row.replyTo = replyChannelFor(id);
    const waiting = await deps.replies.expect(id);
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await enqueue(db, [row]);
      const signal = c.req.raw.signal;
      const outcome = await Promise.race<Reply | "timeout" | "gone">([
        waiting.reply,
        new Promise((r) => (timer = setTimeout(() => r("timeout"), route.timeout_ms + REPLY_GRACE_MS))),
        new Promise((r) => signal.addEventListener("abort", () => r("gone"), { once: true })),
      ]);
      if (outcome === "timeout" || outcome === "gone") {
        const what = await abandonSync(db, id);
        log.warn({ execution_id: id, route_id: route.id, reason: outcome, row: what }, "sync caller stopped waiting");
        return c.json({ error: "timeout", execution_id: id }, 504);
      }
      log.info({ execution_id: id, app: route.app_slug, script: route.script_name, outcome: outcome.ok ? outcome.response.status : outcome.error.code, ms: Math.round(performance.now() - started) }, "sync request");
      if (outcome.ok) return new Response(outcome.response.body === "" ? null : outcome.response.body, { status: outcome.response.status, headers: outcome.response.headers });
      const { code, message } = outcome.error;
      const body: Record<string, unknown> = { error: code, message, execution_id: id };
      if (code === "timeout" || code === "memory_limit" || code === "internal") delete body.message;
      return c.json(body, ERROR_STATUS[code] ?? 500);
    } finally {
      clearTimeout(timer);
      waiting.done();
    }
  }

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
