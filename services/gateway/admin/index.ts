import { Hono } from "hono";
import { authenticate } from "../../../lib/auth/tokens.ts";
import type { GatewayDeps } from "../deps.ts";
import { appRoutes } from "./apps.ts";
import { accountRoutes, sessionRoutes } from "./auth.ts";
import { executionRoutes } from "./executions.ts";
import type { AdminEnv } from "./http.ts";
import { scriptRoutes } from "./scripts.ts";

/** The admin API (SPEC section 7), mounted at /api/v1. Everything but bootstrap and login needs a token. */
export function adminRouter(deps: GatewayDeps): Hono {
  const api = new Hono<AdminEnv>();
  api.route("/", sessionRoutes(deps));
  api.use("*", async (c, next) => {
    c.set("principal", await authenticate(deps.db, c.req.header("authorization")));
    await next();
  });
  for (const routes of [accountRoutes, appRoutes, scriptRoutes, executionRoutes]) api.route("/", routes(deps));
  api.all("*", (c) => c.json({ error: "not_found", message: `no admin endpoint ${c.req.method} ${c.req.path}` }, 404));
  return api as unknown as Hono;
}
