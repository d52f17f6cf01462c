// The page frame and the small pieces every page uses. All user data goes through JSX children
// and attributes, which hono/jsx escapes; nothing here builds HTML from strings.
import type { Child } from "hono/jsx";
import type { AppAccess } from "../../../lib/apps/index.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import type { Route } from "../../../lib/routes/index.ts";
import { BASE } from "./session.ts";
import { assetUrl } from "./static.ts";

export type Frame = { who?: Principal | undefined; csrf?: string | undefined };
export type AppFrame = Frame & { app: AppAccess; unresolved: number };

export const appPath = (slug: string, rest = "") => `${BASE}/apps/${encodeURIComponent(slug)}${rest}`;
export const scriptPath = (slug: string, id: string, rest = "") => appPath(slug, `/scripts/${id}${rest}`);

/** How a route reads in a table: methods, host, path (a prefix with a trailing /*). */
export const routeText = (r: Route) =>
  `${r.methods ? r.methods.join(",") : "ANY"} ${r.host_kind === "any" ? "" : r.host_kind === "wildcard" ? `*.${r.host}` : r.host}${r.path}${r.path_kind === "prefix" ? "/*" : ""}`;

export function Page(props: Frame & { title: string; children?: Child; app?: AppAccess | undefined; unresolved?: number | undefined; tab?: string }) {
  const { who, csrf, app } = props;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · picloud</title>
        <link rel="stylesheet" href={assetUrl("dashboard.css")} />
        <script src={assetUrl("dashboard.js")} defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href={BASE}>
            picloud
          </a>
          {who && (
            <span class="who">
              <span class="email">{who.email}</span>
              <form method="post" action={`${BASE}/logout`} class="inline">
                <Csrf token={csrf} />
                <button type="submit" class="link">
                  Sign out
                </button>
              </form>
            </span>
          )}
        </header>
        {app && (
          <nav class="tabs">
            <a href={appPath(app.slug)} class={props.tab === "app" ? "on" : ""}>
              {app.name}
            </a>
            <a href={appPath(app.slug, "/dead-letters")} class={props.tab === "dead-letters" ? "on" : ""}>
              Dead letters <Badge slug={app.slug} n={props.unresolved ?? 0} />
            </a>
            <a href={appPath(app.slug, "/executions")} class={props.tab === "executions" ? "on" : ""}>
              Executions
            </a>
            <a href={appPath(app.slug, "/abandoned")} class={props.tab === "abandoned" ? "on" : ""}>
              Abandoned
            </a>
            <a href={appPath(app.slug, "/kv")} class={props.tab === "kv" ? "on" : ""}>
              KV
            </a>
          </nav>
        )}
        <main>
          <h1>{props.title}</h1>
          <p class="alert" role="alert" hidden></p>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export const Csrf = (p: { token: string | undefined }) => <input type="hidden" name="_csrf" value={p.token ?? ""} />;

/** The red count of an app's unresolved dead letters; hidden at 0 (the script updates it after an action). */
export const Badge = (p: { slug: string; n: number }) => (
  <span class="badge" data-badge={p.slug} hidden={p.n === 0} title="unresolved dead letters">
    {String(p.n)}
  </span>
);

/** A form of one button that POSTs to `action` (with the CSRF token). */
export function Action(p: { action: string; label: string; csrf: string | undefined; js?: string; confirm?: string; cls?: string }) {
  return (
    <form method="post" action={p.action} class="inline" data-js={p.js} data-confirm={p.confirm}>
      <Csrf token={p.csrf} />
      <button type="submit" class={p.cls}>
        {p.label}
      </button>
    </form>
  );
}

/** Keyset paging: the first page and the next (cursors only go forward). */
export function Pager(p: { base: string; query?: Record<string, string | undefined>; cursor: string | null; at: string | undefined }) {
  const link = (cursor?: string) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(p.query ?? {})) if (v) q.set(k, v);
    if (cursor) q.set("cursor", cursor);
    const s = q.toString();
    return s ? `${p.base}?${s}` : p.base;
  };
  if (!p.cursor && !p.at) return null;
  return (
    <p class="pager">
      {p.at && <a href={link()}>« First page</a>}
      {p.cursor && (
        <a href={link(p.cursor)} rel="next">
          Next page »
        </a>
      )}
    </p>
  );
}

export const Time = (p: { at: string | null | undefined }) => (p.at ? <time datetime={p.at}>{p.at.replace("T", " ").replace(/\.\d+Z$|Z$/, "Z")}</time> : <span class="muted">—</span>);

export const Json = (p: { value: unknown }) => <pre class="json">{p.value === undefined ? "" : JSON.stringify(p.value, null, 2)}</pre>;

/** The message of a stored error ({code, message} or anything else). */
export function errorText(err: unknown): string {
  if (err === null || err === undefined) return "";
  if (typeof err === "object" && "message" in err) {
    const e = err as { code?: unknown; message?: unknown };
    return e.code ? `${String(e.code)}: ${String(e.message)}` : String(e.message);
  }
  return typeof err === "string" ? err : JSON.stringify(err);
}

export const shortId = (id: string | null | undefined) => (id ? id.slice(0, 8) : "—");

export const Empty = (p: { children: Child }) => <p class="muted">{p.children}</p>;

/** A form error shown inline, beside the form it belongs to. */
export const FormError = (p: { message: string | undefined }) => (p.message ? <p class="form-error">{p.message}</p> : null);

/** Tables scroll inside their box on a narrow screen instead of widening the page. */
export const Scroll = (p: { children: Child }) => <div class="scroll">{p.children}</div>;
