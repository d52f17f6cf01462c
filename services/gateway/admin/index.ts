import { Hono } from "hono";
import type { GatewayDeps } from "../deps.ts";

/** The admin API (SPEC section 7), mounted at /api/v1. */
export function adminRouter(_deps: GatewayDeps): Hono {
  const api = new Hono();
  return api;
}
