// Bootstrap and login: the two endpoints that need no token. Both answer with a session token of
// full scope (`admin`), valid for SESSION_DAYS.
import { Hono } from "hono";
import { z } from "zod";
import { issueToken } from "../../../lib/auth/tokens.ts";
import { bootstrapOwner, SESSION_DAYS, signIn } from "../../../lib/users/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, email, password } from "./http.ts";

/** No policy check at login: a wrong password of any length is just wrong (401). */
export const loginFields = z.object({ email, password: z.string().max(1024, "must be at most 1024 characters") });

export function sessionRoutes({ db }: GatewayDeps): Hono {
  const api = new Hono();

  api.post("/admin/bootstrap", async (c) => {
    const input = await body(c, z.object({ email, password }));
    const { user, token } = await bootstrapOwner(db, input.email, input.password, (tx, u) => issueToken(tx, u.id, "bootstrap", ["admin"], SESSION_DAYS));
    return c.json({ token: token.token, token_id: token.id, expires_at: token.expires_at, user }, 201);
  });

  api.post("/admin/login", async (c) => {
    const input = await body(c, loginFields);
    const { user, token } = await signIn(db, input.email, input.password, "session");
    return c.json({ token: token.token, token_id: token.id, expires_at: token.expires_at, user });
  });

  return api;
}
