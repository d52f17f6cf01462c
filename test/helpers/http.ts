// The real gateway app on an ephemeral port, in the test process, against a fresh database.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { loadConfig, type Config } from "../../lib/config.ts";
import { createDb, type Db } from "../../lib/db/pool.ts";
import { createLogger } from "../../lib/log.ts";
import { createGateway } from "../../services/gateway/wire.ts";
import { freshDatabase } from "./db.ts";

export type Gateway = { url: string; db: Db; dbUrl: string; config: Config; close(): Promise<void>; api: Api };

export async function startGateway(env: Record<string, string> = {}): Promise<Gateway> {
  const { url: dbUrl } = await freshDatabase();
  const config = loadConfig({ LOG_LEVEL: "silent", ...env, DATABASE_URL: dbUrl });
  const db = await createDb(dbUrl);
  const log = createLogger("gateway-test", config.logLevel);
  const gateway = await createGateway(config, log, db, dbUrl);
  const server = serve({ fetch: gateway.app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    db,
    dbUrl,
    config,
    api: client(url),
    async close() {
      await new Promise((r) => server.close(r));
      await gateway.close();
      await db.end();
    },
  };
}

export type Reply<T = any> = { status: number; body: T; headers: Headers };
export type Api = ReturnType<typeof client>;

/** A small JSON client: api(token).post(path, body) → {status, body}. */
export function client(base: string) {
  const call = async (method: string, path: string, token?: string, payload?: unknown, raw?: string): Promise<Reply> => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (payload !== undefined || raw !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(base + path, { method, headers, body: raw ?? (payload === undefined ? undefined : JSON.stringify(payload)) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, headers: res.headers };
  };
  return (token?: string) => ({
    get: (path: string) => call("GET", path, token),
    post: (path: string, payload?: unknown) => call("POST", path, token, payload ?? {}),
    postRaw: (path: string, raw: string) => call("POST", path, token, undefined, raw),
    put: (path: string, payload?: unknown) => call("PUT", path, token, payload ?? {}),
    putRaw: (path: string, raw: string) => call("PUT", path, token, undefined, raw),
    patchRaw: (path: string, raw: string) => call("PATCH", path, token, undefined, raw),
    patch: (path: string, payload?: unknown) => call("PATCH", path, token, payload ?? {}),
    delete: (path: string) => call("DELETE", path, token),
  });
}

/** Bootstraps the owner and returns their token. */
export async function bootstrap(g: Gateway, email = "owner@example.com", password = "owner-password"): Promise<string> {
  const r = await g.api().post("/api/v1/admin/bootstrap", { email, password });
  if (r.status !== 201) throw new Error(`bootstrap: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

/** Creates a user (as the owner) and signs them in. */
export async function userToken(g: Gateway, ownerToken: string, email: string, password = "user-password"): Promise<{ id: string; token: string }> {
  const u = await g.api(ownerToken).post("/api/v1/admin/users", { email, password });
  if (u.status !== 201) throw new Error(`create user: ${u.status} ${JSON.stringify(u.body)}`);
  const l = await g.api().post("/api/v1/admin/login", { email, password });
  return { id: u.body.id as string, token: l.body.token as string };
}

export type Member = { id: string; token: string };
export type Team = { owner: string; viewer: Member; editor: Member; appAdmin: Member; outsider: Member; appId: string; slug: string };

/**
 * The usual cast: the owner, an app (`slug`) made by its app_admin, a viewer and an editor of it,
 * and an outsider who belongs to no app.
 */
export async function team(g: Gateway, slug = "shop"): Promise<Team> {
  const owner = await bootstrap(g);
  const [viewer, editor, appAdmin, outsider] = await Promise.all(
    ["viewer", "editor", "appadmin", "outsider"].map((who) => userToken(g, owner, `${who}@example.com`)),
  );
  const app = await g.api(appAdmin!.token).post("/api/v1/admin/apps", { slug, name: slug });
  if (app.status !== 201) throw new Error(`create app: ${app.status} ${JSON.stringify(app.body)}`);
  for (const [m, role] of [[viewer!, "viewer"], [editor!, "editor"]] as const) {
    const r = await g.api(appAdmin!.token).put(`/api/v1/admin/apps/${slug}/members/${m.id}`, { role });
    if (r.status !== 200) throw new Error(`add member: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return { owner, viewer: viewer!, editor: editor!, appAdmin: appAdmin!, outsider: outsider!, appId: app.body.id, slug };
}

/** A token of `scopes` for the holder of `sessionToken`. */
export async function scopedToken(g: Gateway, sessionToken: string, scopes: string[], name = scopes.join("+")): Promise<string> {
  const r = await g.api(sessionToken).post("/api/v1/admin/tokens", { name, scopes });
  if (r.status !== 201) throw new Error(`create token: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}
