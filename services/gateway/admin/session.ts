// Bootstrap and login: the two endpoints that need no token. Both answer with a session token of
// full scope (`admin`), valid for SESSION_DAYS.
import { Hono } from "hono";
import { z } from "zod";
import { issueToken, pruneExpiredTokens } from "../../../lib/auth/tokens.ts";
import { bootstrapOwner, checkLogin } from "../../../lib/users/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, email, password } from "./http.ts";

const SESSION_DAYS = 30;

export function sessionRoutes({ db }: GatewayDeps): Hono {
  const api = new Hono();

  api.post("/admin/bootstrap", async (c) => {
    const input = await body(c, z.object({ email, password }));
    const { user, token } = await bootstrapOwner(db, input.email, input.password, (tx, u) => issueToken(tx, u.id, "bootstrap", ["admin"], SESSION_DAYS));
    return c.json({ token: token.token, token_id: token.id, expires_at: token.expires_at, user }, 201);
  });

  api.post("/admin/login", async (c) => {
    // No policy check here: a wrong password of any length is just wrong (401).
    const input = await body(c, z.object({ email, password: z.string().max(1024, "must be at most 1024 characters") }));
    const user = await checkLogin(db, input.email, input.password);
    await pruneExpiredTokens(db, user.id);
    const token = await issueToken(db, user.id, "session", ["admin"], SESSION_DAYS);
    return c.json({ token: token.token, token_id: token.id, expires_at: token.expires_at, user });
  });

  return api;
}
