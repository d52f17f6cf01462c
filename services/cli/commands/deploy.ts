// deploy: a file becomes the app's script of that name (created, or a new version when the
// source changed), and --route binds it to a path. Idempotent: deploying the same file and
// route again changes nothing; a changed --method or --async updates the script's route on
// that path instead of adding a second one.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { normalizePath } from "../../../lib/routes/match.ts";
import { findScript, pages, seg, type Client, type ScriptInfo } from "../client.ts";
import { integer, type Command, type Run } from "../command.ts";
import { ApiError, CliError, EXIT, UsageError } from "../errors.ts";
import { fields } from "../output.ts";

type Route = { id: string; host_kind: string; path_kind: string; path: string; methods: string[] | null; dispatch_mode: "sync" | "async" };
type Script = ScriptInfo & { source?: string };
type RouteDef = { path_kind: string; path: string; methods: string[] | null; dispatch_mode: "sync" | "async" };
type Action = "created" | "updated" | "unchanged";

export const deploy: Command = {
  name: "deploy",
  args: ["file.js"],
  summary: "Create or update a script from a file, and bind it to an HTTP route if --route is given.",
  options: {
    app: { type: "string", value: "slug", help: "the app (required)" },
    name: { type: "string", help: "script name (default: the file name without its extension)" },
    route: { type: "string", value: "path", help: "bind the script to this path; /users/:id is a pattern (ctx.request.params.id)" },
    prefix: { type: "boolean", help: "the route matches the path and everything under it" },
    method: { type: "string", multiple: true, help: "the route answers only these methods (repeat or comma-separate; default: all)" },
    async: { type: "boolean", help: "the route answers 202 at once and the script runs later" },
    "timeout-ms": { type: "string", value: "ms", help: "script time limit (default 5000)" },
    "memory-mb": { type: "string", value: "mb", help: "script memory limit (default 32)" },
  },
  more: "examples:\n  picloud deploy hello.js --app demo --route /hello/:name --method GET\n  picloud deploy ingest.js --app demo --route /ingest --method POST --async",
  async run(r) {
    const file = r.arg(0)!;
    const app = r.need("app");
    const name = r.opt("name") ?? path.basename(file).replace(/\.[^.]+$/, "");
    const route = routeDef(r);
    const limits = { timeout_ms: integer(r, "timeout-ms", 1, 300_000), memory_mb: integer(r, "memory-mb", 1, 1024) };
    let source: string;
    try {
      source = await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }

    const script = await compiled(file, () => putScript(r.api, app, name, source, limits));
    const bound = route ? await bindRoute(r.api, script.script.id, route) : null;
    const { source: _, ...shownScript } = script.script;
    r.print(
      { script: shownScript, script_action: script.action, route: bound?.route ?? null, route_action: bound?.action ?? null },
      fields([
        [`script ${script.action}`, `${script.script.name} (version ${script.script.version})`],
        ["script id", script.script.id],
        ...(bound
          ? ([
              [`route ${bound.action}`, `${bound.route.methods?.join(",") ?? "any method"} ${bound.route.path} (${bound.route.dispatch_mode})`],
              ["url", `${r.url}${bound.route.path}`],
            ] as [string, string][])
          : []),
      ]),
    );
  },
};

function routeDef(r: Run): RouteDef | null {
  const path = r.opt("route");
  const methods = r.list("method").map((m) => m.toUpperCase());
  if (path === undefined) {
    for (const f of ["method", "async", "prefix"]) if (r.flag(f) || (f === "method" && methods.length)) throw new UsageError(`--${f} needs --route <path>`);
    return null;
  }
  if (!path.startsWith("/")) throw new UsageError(`--route must start with /, not ${JSON.stringify(path)}`);
  const pattern = path.split("/").some((s) => s.startsWith(":"));
  if (pattern && r.flag("prefix")) throw new UsageError("--prefix cannot be used with a :param route");
  return { path_kind: pattern ? "pattern" : r.flag("prefix") ? "prefix" : "exact", path: normalizePath(path), methods: methods.length ? [...new Set(methods)] : null, dispatch_mode: r.flag("async") ? "async" : "sync" };
}

/** A source the server refuses to compile (422) is the deploy's error, worded for the file. */
async function compiled<T>(file: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) throw new CliError(EXIT.api, `${file} does not compile: ${(err.body as { message?: string }).message}`);
    throw err;
  }
}

async function putScript(api: Client, app: string, name: string, source: string, limits: { timeout_ms?: number | undefined; memory_mb?: number | undefined }): Promise<{ script: Script; action: Action }> {
  const existing = await findScript(api, app, name);
  if (!existing) return { script: await api.post<Script>(`/admin/apps/${seg(app)}/scripts`, { name, source, ...limits }), action: "created" };
  const current = await api.get<Script>(`/admin/scripts/${seg(existing.id)}`);
  const changes: Record<string, unknown> = {};
  if (current.source !== source) changes.source = source;
  if (limits.timeout_ms !== undefined && limits.timeout_ms !== current.timeout_ms) changes.timeout_ms = limits.timeout_ms;
  if (limits.memory_mb !== undefined && limits.memory_mb !== current.memory_mb) changes.memory_mb = limits.memory_mb;
  if (!Object.keys(changes).length) return { script: current, action: "unchanged" };
  return { script: await api.patch<Script>(`/admin/scripts/${seg(current.id)}`, changes), action: "updated" };
}

async function bindRoute(api: Client, scriptId: string, def: RouteDef): Promise<{ route: Route; action: Action }> {
  for await (const route of pages<Route>(api, `/admin/scripts/${seg(scriptId)}/routes`)) {
    if (route.host_kind !== "any" || route.path_kind !== def.path_kind || route.path !== def.path) continue;
    const same = sameMethods(route.methods, def.methods) && route.dispatch_mode === def.dispatch_mode;
    if (same) return { route, action: "unchanged" };
    return { route: await api.patch<Route>(`/admin/routes/${seg(route.id)}`, { methods: def.methods, dispatch_mode: def.dispatch_mode }), action: "updated" };
  }
  return { route: await api.post<Route>(`/admin/scripts/${seg(scriptId)}/routes`, def), action: "created" };
}

const sameMethods = (a: string[] | null, b: string[] | null): boolean => (a === null || b === null ? a === b : a.length === b.length && a.every((m) => b.includes(m)));
