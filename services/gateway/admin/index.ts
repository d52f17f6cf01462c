// The admin API (SPEC section 7), mounted at /api/v1: one module per resource. Everything but
// bootstrap and login needs `Authorization: Bearer <token>`; each handler then checks the token's
// scope (lib/auth/scopes.ts) and the caller's role on the app concerned (lib/auth/roles.ts).
import { Hono } from "hono";
import { authenticate } from "../../../lib/auth/tokens.ts";
import type { GatewayDeps } from "../deps.ts";
import { appRoutes } from "./apps.ts";
import { deadLetterRoutes } from "./dead-letters.ts";
import { executeRoutes } from "./execute.ts";
import { executionRoutes } from "./executions.ts";
import type { AdminEnv } from "./http.ts";
import { kvRoutes } from "./kv.ts";
import { memberRoutes } from "./members.ts";
import { routeRoutes } from "./routes.ts";
import { scriptRoutes } from "./scripts.ts";
import { sessionRoutes } from "./session.ts";
import { tokenRoutes } from "./tokens.ts";
import { triggerRoutes } from "./triggers.ts";
import { userRoutes } from "./users.ts";

export function adminRouter(deps: GatewayDeps): Hono {
  const api = new Hono<AdminEnv>();
  api.route("/", sessionRoutes(deps));
  api.use("*", async (c, next) => {
    c.set("principal", await authenticate(deps.db, c.req.header("authorization")));
    await next();
  });
  for (const routes of [tokenRoutes, userRoutes, appRoutes, memberRoutes, scriptRoutes, routeRoutes, executionRoutes, executeRoutes, kvRoutes, triggerRoutes, deadLetterRoutes]) api.route("/", routes(deps));
  api.all("*", (c) => c.json({ error: "not_found", message: `no admin endpoint ${c.req.method} ${c.req.path}` }, 404));
  return api as unknown as Hono;
}
