// HTTP routes of a script (SPEC section 4). Editors create, change and delete them; a route that
// would match the same requests as an existing one (of any app) is 409 naming that route. The
// matching rules and precedence are documented in lib/routes/match.ts.
import { Hono } from "hono";
import { z } from "zod";
import { NEEDS } from "../../../lib/auth/roles.ts";
import { ValidationError } from "../../../lib/errors.ts";
import { createRoute, deleteRoute, listRoutes, PLATFORM_PATHS, platformPathOf, updateRoute, type Route, type RouteInput } from "../../../lib/routes/index.ts";
import type { GatewayDeps } from "../deps.ts";
import { routeAccess, scriptAccess } from "./access.ts";
import { body, caller, page, parse, type AdminEnv } from "./http.ts";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
const HOST = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const PARAM = /^[A-Za-z_][A-Za-z0-9_]*$/;

const routeFields = z
  .object({
    host_kind: z.enum(["any", "exact", "wildcard"]).default("any"),
    host: z.string().trim().toLowerCase().min(1, "must not be empty").max(253, "must be at most 253 characters").nullable().optional(),
    path_kind: z.enum(["exact", "prefix", "pattern"]).default("exact"),
    path: z.string().startsWith("/", "must start with /").max(1000, "must be at most 1000 characters"),
    methods: z.array(z.string().toUpperCase().pipe(z.enum(METHODS))).min(1, "must list at least one method (omit it for all)").nullable().optional(),
    dispatch_mode: z.enum(["sync", "async"]).default("sync"),
  })
  .strict();

/** Validates a route definition; a wildcard host `*.example.com` is stored as its suffix. */
export function toRouteInput(raw: unknown): RouteInput {
  const r = parse(routeFields, raw);
  let host = r.host ?? null;
  if (r.host_kind === "any" && host !== null) throw new ValidationError("host", "must be omitted when host_kind is any");
  if (r.host_kind !== "any" && host === null) throw new ValidationError("host", `is required when host_kind is ${r.host_kind}`);
  if (r.host_kind === "wildcard") {
    if (!host!.startsWith("*.")) throw new ValidationError("host", "a wildcard host looks like *.example.com");
    host = host!.slice(2);
  }
  if (host !== null && !HOST.test(host)) throw new ValidationError("host", "is not a valid host name");
  const segments = r.path.split("/").filter(Boolean);
  if (segments.some((s) => s === "." || s === "..")) throw new ValidationError("path", "must not contain . or .. segments");
  const platform = platformPathOf(r.path);
  if (platform) throw new ValidationError("path", `${platform} belongs to the platform (${PLATFORM_PATHS.join(", ")}): a route there could never be reached`);
  const params = segments.filter((s) => s.startsWith(":")).map((s) => s.slice(1));
  if (r.path_kind === "pattern") {
    if (!params.length) throw new ValidationError("path", "a pattern has at least one :param segment");
    if (params.some((n) => !PARAM.test(n))) throw new ValidationError("path", "parameter names are letters, digits and _, not starting with a digit");
    if (new Set(params).size !== params.length) throw new ValidationError("path", "parameter names must be unique");
  } else if (params.length) throw new ValidationError("path", ":params need path_kind pattern");
  return { host_kind: r.host_kind, host, path_kind: r.path_kind, path: r.path, methods: r.methods ? [...new Set(r.methods)] : null, dispatch_mode: r.dispatch_mode };
}

/** The route as the API shows it: a wildcard host with its "*." back. */
const shown = (r: Route): Route => (r.host_kind === "wildcard" ? { ...r, host: `*.${r.host}` } : r);

/** A PATCH merged over the route's current definition (changing host_kind drops the old host). */
function merged(route: Route, patch: Record<string, unknown>): Record<string, unknown> {
  const { host_kind, host, path_kind, path, methods, dispatch_mode } = shown(route);
  const base: Record<string, unknown> = { host_kind, host, path_kind, path, methods, dispatch_mode };
  if ("host_kind" in patch && !("host" in patch)) delete base.host;
  return { ...base, ...patch };
}

export function routeRoutes({ db }: GatewayDeps): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();

  api.post("/admin/scripts/:id/routes", async (c) => {
    const who = caller(c, "write");
    const { script } = await scriptAccess(db, who, c.req.param("id"), NEEDS.edit);
    const input = toRouteInput(await body(c, z.unknown()));
    return c.json(shown(await createRoute(db, script.app_id, script.id, input)), 201);
  });

  api.get("/admin/scripts/:id/routes", async (c) => {
    const who = caller(c, "read");
    const { script } = await scriptAccess(db, who, c.req.param("id"), NEEDS.read);
    const list = await listRoutes(db, script.id, page(c));
    return c.json({ ...list, items: list.items.map(shown) });
  });

  api.get("/admin/routes/:id", async (c) => {
    const who = caller(c, "read");
    const { route } = await routeAccess(db, who, c.req.param("id"), NEEDS.read);
    return c.json(shown(route));
  });

  api.patch("/admin/routes/:id", async (c) => {
    const who = caller(c, "write");
    const { route } = await routeAccess(db, who, c.req.param("id"), NEEDS.edit);
    const patch = await body(c, z.record(z.unknown()));
    return c.json(shown(await updateRoute(db, route.id, toRouteInput(merged(route, patch)))));
  });

  api.delete("/admin/routes/:id", async (c) => {
    const who = caller(c, "write");
    const { route } = await routeAccess(db, who, c.req.param("id"), NEEDS.edit);
    await deleteRoute(db, route.id);
    return c.body(null, 204);
  });

  return api;
}
