// API tokens: each user manages their own. Minting, listing and revoking need the `admin` scope
// (a narrower token cannot mint itself a wider one). The secret is returned once, at creation.
import { Hono } from "hono";
import { z } from "zod";
import { SCOPES } from "../../../lib/auth/scopes.ts";
import { deleteToken, issueToken, listTokens } from "../../../lib/auth/tokens.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, page, type AdminEnv } from "./http.ts";

const newToken = z
  .object({
    name: z.string().trim().min(1, "must not be empty").max(100, "must be at most 100 characters"),
    scopes: z.array(z.enum(SCOPES)).min(1, "must list at least one scope"),
    expires_in_days: z.number().int("must be an integer").min(1).max(3650).nullable().default(null),
  })
  .strict();

export function tokenRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.post("/admin/tokens", async (c) => {
    const who = caller(c, "admin");
    const input = await body(c, newToken);
    const token = await issueToken(db, who.userId, input.name, [...new Set(input.scopes)], input.expires_in_days);
    return c.json(token, 201);
  });

  api.get("/admin/tokens", async (c) => {
    const who = caller(c, "admin");
    return c.json(await listTokens(db, who.userId, page(c)));
  });

  api.delete("/admin/tokens/:id", async (c) => {
    const who = caller(c, "admin");
    await deleteToken(db, who.userId, c.req.param("id"));
    return c.body(null, 204);
  });

  return api;
}
