import { Hono } from "hono";
import { z } from "zod";
import { SCOPES } from "../../../lib/auth/scopes.ts";
import { deleteToken, issueToken, listTokens } from "../../../lib/auth/tokens.ts";
import { ForbiddenError, NotFoundError } from "../../../lib/errors.ts";
import { isUuid } from "../../../lib/ids.ts";
import { bootstrapOwner, checkLogin, createUser, listUsers } from "../../../lib/users/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, email, password, type AdminEnv } from "./http.ts";

const SESSION_DAYS = 30;
const credentials = z.object({ email, password });

/** Bootstrap and login: the two endpoints that need no token. */
export function sessionRoutes({ db }: GatewayDeps): Hono {
  const api = new Hono();
  api.post("/admin/bootstrap", async (c) => {
    const input = await body(c, credentials);
    const user = await bootstrapOwner(db, input.email, input.password);
    const token = await issueToken(db, user.id, "bootstrap", ["admin"], SESSION_DAYS);
    return c.json({ token: token.token, token_id: token.id, user }, 201);
  });
  api.post("/admin/login", async (c) => {
    const input = await body(c, z.object({ email, password: z.string().max(1024) }));
    const user = await checkLogin(db, input.email, input.password);
    const token = await issueToken(db, user.id, "session", ["admin"], SESSION_DAYS);
    return c.json({ token: token.token, token_id: token.id, expires_at: token.expires_at, user });
  });
  return api;
}

/** Tokens (own) and users (owner only). */
export function accountRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();
  api.post("/admin/tokens", async (c) => {
    const who = caller(c, "admin");
    const input = await body(
      c,
      z.object({
        name: z.string().trim().min(1, "must not be empty").max(100),
        scopes: z.array(z.enum(SCOPES)).min(1, "must list at least one scope").default(["read"]),
        expires_in_days: z.number().int().min(1).max(3650).nullable().default(null),
      }),
    );
    const token = await issueToken(db, who.userId, input.name, [...new Set(input.scopes)], input.expires_in_days);
    return c.json(token, 201);
  });
  api.get("/admin/tokens", async (c) => {
    const who = caller(c, "admin");
    return c.json({ items: await listTokens(db, who.userId), cursor: null });
  });
  api.delete("/admin/tokens/:id", async (c) => {
    const who = caller(c, "admin");
    if (!isUuid(c.req.param("id"))) throw new NotFoundError("token");
    await deleteToken(db, who.userId, c.req.param("id"));
    return c.body(null, 204);
  });

  api.post("/admin/users", async (c) => {
    const who = caller(c, "admin");
    if (!who.isOwner) throw new ForbiddenError("only the owner creates users");
    const input = await body(c, credentials);
    return c.json(await createUser(db, input.email, input.password), 201);
  });
  api.get("/admin/users", async (c) => {
    const who = caller(c, "admin");
    if (!who.isOwner) throw new ForbiddenError("only the owner lists users");
    return c.json({ items: await listUsers(db), cursor: null });
  });
  return api;
}
