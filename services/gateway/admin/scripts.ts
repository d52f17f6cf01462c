import { Hono } from "hono";
import { z } from "zod";
import { appAccess } from "../../../lib/apps/index.ts";
import { ValidationError } from "../../../lib/errors.ts";
import { createRoute, deleteRoute, getRoute, listRoutes, type RouteInput } from "../../../lib/routes/index.ts";
import { createScript, deleteScript, getScript, listScripts, updateScript } from "../../../lib/scripts/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { body, caller, parse, type AdminEnv } from "./http.ts";

const scriptName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be 1-100 characters of letters, digits, _ . -");
const source = z.string().min(1, "must not be empty");
const timeoutMs = z.number().int("must be an integer").min(1).max(300_000);
const memoryMb = z.number().int("must be an integer").min(1).max(1024);
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

const routeInput = z
  .object({
    host_kind: z.enum(["any", "exact", "wildcard"]).default("any"),
    host: z.string().trim().toLowerCase().min(1).max(253).nullable().optional(),
    path_kind: z.enum(["exact", "prefix", "pattern"]).default("exact"),
    path: z.string().startsWith("/", "must start with /").max(1000),
    methods: z.array(z.string().toUpperCase().pipe(z.enum(METHODS))).min(1, "must list at least one method (omit it for all)").nullable().optional(),
    dispatch_mode: z.enum(["sync", "async"]).default("sync"),
  })
  .strict();

function toRouteInput(raw: unknown): RouteInput {
  const r = parse(routeInput, raw);
  let host = r.host ?? null;
  if (r.host_kind === "any" && host !== null) throw new ValidationError("host", "must be omitted when host_kind is any");
  if (r.host_kind !== "any" && host === null) throw new ValidationError("host", `is required when host_kind is ${r.host_kind}`);
  if (r.host_kind === "wildcard") {
    if (!host!.startsWith("*.")) throw new ValidationError("host", "a wildcard host looks like *.example.com");
    host = host!.slice(2);
  }
  if (host !== null && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) throw new ValidationError("host", "is not a valid host name");
  if (r.path_kind === "pattern") {
    const names = r.path.split("/").filter((s) => s.startsWith(":")).map((s) => s.slice(1));
    if (!names.length) throw new ValidationError("path", "a pattern has at least one :param segment");
    if (names.some((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n))) throw new ValidationError("path", "parameter names are letters, digits and _");
    if (new Set(names).size !== names.length) throw new ValidationError("path", "parameter names must be unique");
  } else if (r.path.includes("/:")) throw new ValidationError("path", `:params need path_kind pattern`);
  return { host_kind: r.host_kind, host, path_kind: r.path_kind, path: r.path, methods: r.methods ? [...new Set(r.methods)] : null, dispatch_mode: r.dispatch_mode };
}

/** The route as the API shows it: a wildcard host with its "*." back. */
const shown = <R extends { host_kind: string; host: string | null }>(r: R): R => (r.host_kind === "wildcard" ? { ...r, host: `*.${r.host}` } : r);

export function scriptRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();
  api.post("/admin/apps/:app/scripts", async (c) => {
    const app = await appAccess(db, caller(c, "write"), { ref: c.req.param("app") }, "editor");
    const input = await body(c, z.object({ name: scriptName, source, timeout_ms: timeoutMs.optional(), memory_mb: memoryMb.optional() }).strict());
    return c.json(await createScript(db, app.id, input), 201);
  });
  api.get("/admin/apps/:app/scripts", async (c) => {
    const app = await appAccess(db, caller(c, "read"), { ref: c.req.param("app") }, "viewer");
    return c.json({ items: await listScripts(db, app.id), cursor: null });
  });
  api.get("/admin/scripts/:id", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "read"), { id: script.app_id }, "viewer", "script");
    return c.json(script);
  });
  api.patch("/admin/scripts/:id", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "write"), { id: script.app_id }, "editor", "script");
    const input = await body(c, z.object({ name: scriptName.optional(), source: source.optional(), timeout_ms: timeoutMs.optional(), memory_mb: memoryMb.optional() }).strict());
    return c.json(await updateScript(db, script.id, input));
  });
  api.put("/admin/scripts/:id", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "write"), { id: script.app_id }, "editor", "script");
    const input = await body(c, z.object({ name: scriptName.optional(), source, timeout_ms: timeoutMs.optional(), memory_mb: memoryMb.optional() }).strict());
    return c.json(await updateScript(db, script.id, input));
  });
  api.delete("/admin/scripts/:id", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "write"), { id: script.app_id }, "editor", "script");
    await deleteScript(db, script.id);
    return c.body(null, 204);
  });

  api.post("/admin/scripts/:id/routes", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "write"), { id: script.app_id }, "editor", "script");
    const input = toRouteInput(await body(c, z.unknown()));
    return c.json(shown(await createRoute(db, script.app_id, script.id, input)), 201);
  });
  api.get("/admin/scripts/:id/routes", async (c) => {
    const script = await getScript(db, c.req.param("id"));
    await appAccess(db, caller(c, "read"), { id: script.app_id }, "viewer", "script");
    return c.json({ items: (await listRoutes(db, script.id)).map(shown), cursor: null });
  });
  api.get("/admin/routes/:id", async (c) => {
    const route = await getRoute(db, c.req.param("id"));
    await appAccess(db, caller(c, "read"), { id: route.app_id }, "viewer", "route");
    return c.json(shown(route));
  });
  api.delete("/admin/routes/:id", async (c) => {
    const route = await getRoute(db, c.req.param("id"));
    await appAccess(db, caller(c, "write"), { id: route.app_id }, "editor", "route");
    await deleteRoute(db, route.id);
    return c.body(null, 204);
  });
  return api;
}
