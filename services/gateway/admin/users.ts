// Users: the instance owner creates and lists them (with a token of the `admin` scope).
import { Hono } from "hono";
import { z } from "zod";
import type { Principal } from "../../../lib/auth/tokens.ts";
import { ForbiddenError } from "../../../lib/errors.ts";
import { createUser, listUsers } from "../../../lib/users/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, email, page, password, type AdminContext, type AdminEnv } from "./http.ts";

function owner(c: AdminContext): Principal {
  const who = caller(c, "admin");
  if (!who.isOwner) throw new ForbiddenError("only the owner manages users");
  return who;
}

export function userRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.post("/admin/users", async (c) => {
    owner(c);
    const input = await body(c, z.object({ email, password }).strict());
    return c.json(await createUser(db, input.email, input.password), 201);
  });

  api.get("/admin/users", async (c) => {
    owner(c);
    return c.json(await listUsers(db, page(c)));
  });

  return api;
}
