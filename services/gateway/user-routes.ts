import { Hono } from "hono";
import type { GatewayDeps } from "./deps.ts";

/** User routes (SPEC section 4): everything the admin API and probes do not claim. */
export function userRoutes(_deps: GatewayDeps): Hono {
  const app = new Hono();
  app.all("*", (c) => c.json({ error: "not_found" }, 404));
  return app;
}
