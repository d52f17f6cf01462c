// KV browsing (SPEC section 7): an app's collections, a collection's keys, one key's value, and
// writes. Viewers read; editors write. A write here is a write like a script's: it fires the
// app's matching KV triggers, in its transaction. Collection and key travel percent-encoded in
// the path (a "/" in a key is %2F); the app comes from the access check only.
import { Hono } from "hono";
import { z } from "zod";
import { appAccess } from "../../../lib/apps/index.ts";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { NotFoundError, ValidationError } from "../../../lib/errors.ts";
import { checkValueJson, collectionProblem, getEntry, keyProblem, listCollections, listKeys, prefixProblem, ttlProblem, writeNow } from "../../../lib/kv/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, page, type AdminEnv } from "./http.ts";

const newValue = z.object({ value: z.unknown(), ttl_secs: z.unknown().optional() }).strict();

/** A collection, key or prefix from the request, refused (400 naming the field) when malformed. */
export function named(field: string, v: string, problem: (v: unknown) => string | null): string {
  const bad = problem(v);
  if (bad) throw new ValidationError(field, bad);
  return v;
}

export function kvRoutes(deps: GatewayDeps): Hono<AdminEnv> {
  const { db } = deps;
  const env = { config: deps.config, log: deps.log };
  const api = new Hono<AdminEnv>();
  const base = "/admin/apps/:app/kv";

  api.get(base, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    return c.json(await listCollections(db, app.id, page(c)));
  });

  api.get(`${base}/:collection/keys`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    const collection = named("collection", c.req.param("collection"), collectionProblem);
    const prefix = named("prefix", c.req.query("prefix") ?? "", prefixProblem);
    return c.json(await listKeys(db, app.id, collection, { ...page(c), prefix }));
  });

  api.get(`${base}/:collection/keys/:key`, async (c) => {
    const who = caller(c, "read");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.read);
    const entry = await getEntry(db, app.id, named("collection", c.req.param("collection"), collectionProblem), named("key", c.req.param("key"), keyProblem));
    if (!entry) throw new NotFoundError("key");
    return c.json(entry);
  });

  api.put(`${base}/:collection/keys/:key`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.edit);
    const collection = named("collection", c.req.param("collection"), collectionProblem);
    const key = named("key", c.req.param("key"), keyProblem);
    const input = await body(c, newValue);
    if (!("value" in input) || input.value === undefined) throw new ValidationError("value", "is required");
    const json = JSON.stringify(input.value);
    const checked = checkValueJson(json);
    if (!checked.ok) throw new ValidationError("value", checked.problem);
    let ttl: number | null = null;
    if (input.ttl_secs !== undefined && input.ttl_secs !== null) {
      const bad = ttlProblem(input.ttl_secs);
      if (bad) throw new ValidationError("ttl_secs", bad);
      ttl = input.ttl_secs as number;
    }
    const result = await writeNow(db, env, app.id, collection, key, json, ttl);
    const entry = await getEntry(db, app.id, collection, key);
    return c.json({ ...entry, op: result?.op ?? null }, result?.op === "insert" ? 201 : 200);
  });

  api.delete(`${base}/:collection/keys/:key`, async (c) => {
    const who = caller(c, "write");
    const app = await appAccess(db, who, { ref: c.req.param("app") }, NEEDS.edit);
    const collection = named("collection", c.req.param("collection"), collectionProblem);
    const key = named("key", c.req.param("key"), keyProblem);
    const result = await writeNow(db, env, app.id, collection, key, null, null);
    if (!result) throw new NotFoundError("key");
    return c.body(null, 204);
  });

  return api;
}
