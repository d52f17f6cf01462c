import { Hono, type Context, type Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import { sql } from "../../lib/db/pool.ts";
import { pendingMigrations } from "../../lib/db/migrate.ts";
import { PayloadTooLargeError } from "../../lib/errors.ts";
import { metricsResponse } from "../../lib/metrics/http.ts";
import { adminRouter } from "./admin/index.ts";
import { dashboardRouter } from "./dashboard/index.tsx";
import type { GatewayDeps } from "./deps.ts";
import { errorResponse } from "./errors.ts";
import { requestLog } from "./request-log.ts";
import { userRoutes } from "./user-routes.ts";

/** The gateway's HTTP surface: probes, metrics, the admin API under /api/v1, the dashboard under /admin, then user routes. */
export function createApp(deps: GatewayDeps): Hono {
  const app = new Hono();
  app.onError((err, c) => errorResponse(c, err, deps.log));
  app.use("*", requestLog(deps.log));

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      await deps.db.query(sql.unsafe`SELECT 1`);
      const pending = await pendingMigrations(deps.db);
      if (pending.length) return c.json({ status: "not_ready", reason: "migrations pending", pending }, 503);
      return c.json({ status: "ready" });
    } catch {
      return c.json({ status: "not_ready", reason: "database unreachable" }, 503);
    }
  });

  app.get("/metrics", async (c) => {
    const r = await metricsResponse(c.req.header("authorization"), deps.config.metricsToken);
    return c.body(r.body, r.status as 200 | 401, { "content-type": r.type });
  });

  // Every request body, admin or user route, is capped at PICLOUD_MAX_BODY_BYTES. GET and HEAD
  // bodies are never read, so they skip the check: asking for a body builds the full web Request
  // (@hono/node-server otherwise serves a light one), which was a tenth of the gateway's CPU
  // per sync GET.
  const limit = bodyLimit({
    maxSize: deps.config.maxBodyBytes,
    onError: () => {
      throw new PayloadTooLargeError(deps.config.maxBodyBytes);
    },
  });
  app.use("*", (c, next) => (c.req.method === "GET" || c.req.method === "HEAD" ? next() : limit(c, next)));

  // A change made through this gateway is served by it at once: the route table is dropped when
  // the change's answer is ready (after its commit), not when its NOTIFY comes round (other
  // gateways still learn of it that way, a few milliseconds later).
  const changesRoutes = async (c: Context, next: Next) => {
    await next();
    if (c.req.method !== "GET" && c.req.method !== "HEAD" && c.res.status < 400) deps.routes.invalidate();
  };
  app.use("/api/v1/*", changesRoutes);
  app.use("/admin/*", changesRoutes);

  app.route("/api/v1", adminRouter(deps));
  // The dashboard owns /admin and everything under it (lib/routes PLATFORM_PATHS: no user route there).
  app.route("/admin", dashboardRouter(deps));
  app.route("/", userRoutes(deps));
  return app;
}
