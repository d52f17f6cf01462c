// One JSON line per request (SPEC: app, script, execution id, outcome, duration). Handlers add
// what they know with `note(c, …)`; the line is written once the answer is ready. Probes and
// scrapes log at debug: they come every few seconds and tell nothing about the work.
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../../lib/log.ts";

export type RequestFacts = { app?: string; script?: string; execution_id?: string; outcome?: string };

const facts = new WeakMap<Request, RequestFacts>();

/** Adds to the request's log line. */
export function note(c: Context, more: RequestFacts): void {
  const f = facts.get(c.req.raw);
  if (f) Object.assign(f, more);
}

/** What handlers noted so far (the sync latency metric reads the outcome). */
export const notedFor = (c: Context): RequestFacts => facts.get(c.req.raw) ?? {};

const QUIET = new Set(["/healthz", "/readyz", "/metrics"]);

export function requestLog(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const f: RequestFacts = {};
    facts.set(c.req.raw, f);
    try {
      await next();
    } finally {
      const line = { method: c.req.method, path: c.req.path, status: c.res.status, duration_ms: Math.round((performance.now() - started) * 10) / 10, ...f };
      if (QUIET.has(c.req.path)) log.debug(line, "request");
      else log.info(line, "request");
    }
  };
}
