// The admin API over HTTP, and nothing else: the CLI never touches the database.
import { ApiError, UnreachableError } from "./errors.ts";

const TIMEOUT_MS = 30_000;

export type Client = {
  url: string;
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body?: unknown): Promise<T>;
  put<T = any>(path: string, body?: unknown): Promise<T>;
  patch<T = any>(path: string, body?: unknown): Promise<T>;
  delete(path: string): Promise<void>;
};

/** `path` is under /api/v1; each path segment the caller interpolates must be encoded (see `seg`). */
export function client(url: string, token: string | undefined): Client {
  const call = async (method: string, path: string, body?: unknown): Promise<any> => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`${url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw new UnreachableError(url, networkReason(err));
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: kept as text for the message */
    }
    if (!res.ok) throw new ApiError(res.status, parsed);
    return parsed;
  };
  return {
    url,
    get: (path) => call("GET", path),
    post: (path, body = {}) => call("POST", path, body),
    put: (path, body = {}) => call("PUT", path, body),
    patch: (path, body = {}) => call("PATCH", path, body),
    delete: async (path) => void (await call("DELETE", path)),
  };
}

/** A path segment (app slug, key, id) as the API expects it: percent-encoded, "/" included. */
export const seg = (s: string): string => encodeURIComponent(s);

function networkReason(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === "ECONNREFUSED") return "connection refused (is it running? start it with npm start)";
  if (cause?.code === "ENOTFOUND" || cause?.code === "EAI_AGAIN") return "unknown host";
  return cause?.message ?? (err as Error).message;
}

/** Every item of a paged list, fetched 200 at a time. */
export async function* pages<T>(api: Client, path: string): AsyncGenerator<T> {
  let cursor: string | null = null;
  do {
    const page: { items: T[]; cursor: string | null } = await api.get(`${path}?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    yield* page.items;
    cursor = page.cursor;
  } while (cursor);
}

export type ScriptInfo = { id: string; app_id: string; name: string; version: number; timeout_ms: number; memory_mb: number };

/** The app's script of this name (the API addresses scripts by id only). */
export async function findScript(api: Client, app: string, name: string): Promise<ScriptInfo | undefined> {
  for await (const s of pages<ScriptInfo>(api, `/admin/apps/${seg(app)}/scripts`)) if (s.name === name) return s;
  return undefined;
}
