// The dashboard (SPEC section 1): server-rendered pages under /admin, mounted by app.ts ahead of
// user routes. Sign-in reuses the admin API's login (lib/users signIn); every page and action
// checks the token scope and the app role exactly as the matching admin API endpoint does
// (admin/http.ts caller, lib/apps appAccess with lib/auth/roles NEEDS). One module per page.
import { Hono, type Context } from "hono";
import { authenticateSecret, deleteToken } from "../../../lib/auth/tokens.ts";
import { DomainError, NotFoundError, UnauthenticatedError } from "../../../lib/errors.ts";
import { signIn } from "../../../lib/users/index.ts";
import { loginFields } from "../admin/session.ts";
import { parse } from "../admin/http.ts";
import type { GatewayDeps } from "../deps.ts";
import { errorResponse, statusOf } from "../errors.ts";
import { appPages } from "./app.tsx";
import { appsPage } from "./apps.tsx";
import { deadLetterPages } from "./dead-letters.tsx";
import { executionPages } from "./executions.tsx";
import { kvPages } from "./kv.tsx";
import { Page } from "./layout.tsx";
import { scriptPages } from "./scripts.tsx";
import { BASE, checkCsrf, clearSession, csrfFor, refuseCrossSite, safeNext, sessionSecret, setSession, wantsJson, type DashEnv } from "./session.ts";
import { serveAssets } from "./static.ts";

const SAFE = new Set(["GET", "HEAD"]);

export function dashboardRouter(deps: GatewayDeps): Hono {
  const { db, log } = deps;
  const dash = new Hono<DashEnv>();

  dash.use("*", async (c, next) => {
    await next();
    // Scripts and styles come only from here; no framing (clickjacking); no referrer leaves.
    c.header("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
    if (!c.res.headers.has("cache-control")) c.header("cache-control", "no-store");
  });

  dash.onError((err, c) => {
    if (wantsJson(c) || !(err instanceof DomainError)) return errorResponse(c, err, log);
    const status = statusOf(err);
    if (status === 401 && SAFE.has(c.req.method)) return c.redirect(`${BASE}/login?next=${encodeURIComponent(c.req.path)}`, 303);
    return c.html(
      <Page title="Not possible" who={c.get("principal")} csrf={c.get("csrf")}>
        <p class="form-error">{err.message}</p>
        <p>
          <a href={BASE}>Back to the apps</a>
        </p>
      </Page>,
      status,
    );
  });

  serveAssets(dash);

  const loginPage = (c: Context, message?: string, email = "", status: 200 | 400 | 401 = 200) =>
    c.html(
      <Page title="Sign in">
        <form method="post" action={`${BASE}/login`} class="stack narrow">
          <input type="hidden" name="next" value={safeNext(c.req.query("next"))} />
          <label>
            Email <input type="email" name="email" value={email} autocomplete="username" required autofocus />
          </label>
          <label>
            Password <input type="password" name="password" autocomplete="current-password" required />
          </label>
          {message && <p class="form-error">{message}</p>}
          <button type="submit">Sign in</button>
        </form>
      </Page>,
      status,
    );

  dash.get("/login", (c) => loginPage(c));
  dash.post("/login", async (c) => {
    refuseCrossSite(c);
    const form = await c.req.parseBody();
    const email = typeof form.email === "string" ? form.email : "";
    try {
      const input = parse(loginFields, { email, password: form.password });
      const { token } = await signIn(db, input.email, input.password, "dashboard");
      setSession(c, token.token);
      return c.redirect(safeNext(typeof form.next === "string" ? form.next : undefined), 303);
    } catch (err) {
      if (err instanceof DomainError) return loginPage(c, err.message, email, statusOf(err) === 401 ? 401 : 400);
      throw err;
    }
  });

  // Everything below needs a session; state-changing requests also pass the CSRF checks.
  dash.use("*", async (c, next) => {
    const secret = sessionSecret(c);
    if (!secret) throw new UnauthenticatedError("sign in first");
    try {
      c.set("principal", await authenticateSecret(db, secret));
    } catch (err) {
      if (err instanceof UnauthenticatedError) clearSession(c);
      throw err;
    }
    c.set("csrf", csrfFor(secret));
    if (!SAFE.has(c.req.method)) {
      refuseCrossSite(c);
      await checkCsrf(c);
    }
    await next();
  });

  dash.post("/logout", async (c) => {
    const who = c.get("principal");
    await deleteToken(db, who.userId, who.tokenId);
    clearSession(c);
    return c.redirect(`${BASE}/login`, 303);
  });

  for (const pages of [appsPage, appPages, scriptPages, deadLetterPages, executionPages, kvPages]) dash.route("/", pages(deps));
  dash.all("*", () => {
    throw new NotFoundError("dashboard page");
  });
  return dash as unknown as Hono;
}
