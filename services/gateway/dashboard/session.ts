// The dashboard's session: signing in issues an ordinary API token (named "dashboard", full
// scope, listed and revocable with the user's other tokens) whose secret travels only in an
// HttpOnly, SameSite=Strict cookie scoped to /admin. Every request resolves it like a bearer
// token, so the dashboard's caller is the same Principal the admin API sees.
//
// CSRF: a state-changing request must (1) not come from another site (Origin / Sec-Fetch-Site),
// and (2) carry the session's CSRF token, derived from the session secret (which a page of
// another origin can neither read nor guess), in the form field `_csrf` or the header
// `x-csrf-token`. SameSite=Strict already keeps the cookie off cross-site requests; the token
// also covers browsers and proxies that do not honour it.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Principal } from "../../../lib/auth/tokens.ts";
import { ForbiddenError } from "../../../lib/errors.ts";
import { SESSION_DAYS } from "../../../lib/users/index.ts";

export const COOKIE = "picloud_session";
export const BASE = "/admin";

export type DashEnv = { Variables: { principal: Principal; csrf: string } };
export type DashContext = Context<DashEnv>;

export const csrfFor = (secret: string) => createHash("sha256").update(`picloud-dashboard-csrf:${secret}`).digest("base64url");

export const sessionSecret = (c: Context) => getCookie(c, COOKIE);

/** Secure when the browser reached us over https (directly or through a proxy that says so). */
const overHttps = (c: Context) => new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";

export function setSession(c: Context, secret: string): void {
  setCookie(c, COOKIE, secret, { httpOnly: true, sameSite: "Strict", path: BASE, secure: overHttps(c), maxAge: SESSION_DAYS * 86_400 });
}

export function clearSession(c: Context): void {
  deleteCookie(c, COOKIE, { path: BASE, secure: overHttps(c) });
}

/** Refuses a request sent by a page of another site (when the browser says where it came from). */
export function refuseCrossSite(c: Context): void {
  const site = c.req.header("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") throw new ForbiddenError("a request from another site is refused");
  const origin = c.req.header("origin");
  if (origin === undefined) return;
  let from: string | null = null;
  try {
    from = new URL(origin).host;
  } catch {
    /* "null" or garbage: refused below */
  }
  if (from !== (c.req.header("host") ?? new URL(c.req.url).host)) throw new ForbiddenError("a request from another origin is refused");
}

/** The CSRF check of a state-changing request (after refuseCrossSite). */
export async function checkCsrf(c: DashContext): Promise<void> {
  let sent = c.req.header("x-csrf-token");
  if (sent === undefined && /^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(c.req.header("content-type") ?? "")) {
    const field = (await c.req.parseBody())._csrf;
    if (typeof field === "string") sent = field;
  }
  const expected = Buffer.from(c.get("csrf"));
  const given = Buffer.from(sent ?? "");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ForbiddenError("missing or wrong CSRF token: reload the page and try again");
}

/** Where to go after signing in: only a dashboard path of this site. */
export function safeNext(raw: string | undefined): string {
  return raw && raw.startsWith(`${BASE}`) && !raw.startsWith("//") && !raw.includes("\\") && !/[\r\n]/.test(raw) ? raw : BASE;
}

/** The page's script asks for JSON; a plain form post or link gets HTML. */
export const wantsJson = (c: Context) => (c.req.header("accept") ?? "").includes("application/json");
