// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the real
// platform (gateway, dispatcher, sweeper as child processes): sign in, the dead-letter badge,
// the dead-letter list (expand, Replay that really runs a new attempt, Mark resolved without a
// reload), a viewer who cannot replay (and whose forged POST is refused), CSRF, an XSS probe,
// the app page (scripts, routes, triggers), executions, KV, a phone-sized screen, sign out.
// Screenshots of the apps list and the dead-letter page go to docs/screenshots/ with
// PICLOUD_SCREENSHOTS=1 (to refresh the README's), else to a temporary folder (a test run leaves
// the checkout as it was).
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { sql } from "../lib/db/pool.ts";
import { userToken } from "./helpers/http.ts";
import { startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

const CHROMIUM = process.env.PICLOUD_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS =
  process.env.PICLOUD_SCREENSHOTS === "1" ? fileURLToPath(new URL("../docs/screenshots/", import.meta.url)) : `${mkdtempSync(path.join(tmpdir(), "picloud-shots-"))}/`;
const V1 = "/api/v1/admin";
const XSS = "<img src=x onerror=alert(1)>";
const PASSWORD = "user-password";

let p: Platform;
let browser: Browser;
let owner: string;
let admin: { id: string; token: string };
let viewer: { id: string; token: string };
let appId: string;
/** Every dialog any page opened (the XSS probe would open one). */
const dialogs: string[] = [];

test.before(async () => {
  p = await startPlatform({ dispatchers: 1 });
  owner = (await p.api().post(`${V1}/bootstrap`, { email: "owner@example.com", password: "owner-password" })).body.token;
  const g = { api: p.api } as never;
  admin = await userToken(g, owner, "admin@example.com", PASSWORD);
  viewer = await userToken(g, owner, "viewer@example.com", PASSWORD);
  const api = p.api(admin.token);
  appId = (await api.post(`${V1}/apps`, { slug: "shop", name: "Shop" })).body.id;
  await api.post(`${V1}/apps`, { slug: "quiet", name: XSS }); // an app with no dead letters, named like the probe
  t_ok(await api.put(`${V1}/apps/shop/members/${viewer.id}`, { role: "viewer" }));
  // Fails until flags/fixed is set, so a replay after the "fix" succeeds.
  const thrower = await api.post(`${V1}/apps/shop/scripts`, {
    name: "thrower",
    source: `export default async (ctx) => {
      console.log("order " + ctx.event.key);
      if (!(await kv.collection("flags").get("fixed"))) throw new Error("refusing " + ctx.event.key);
      return "ok";
    }`,
  });
  t_ok(thrower);
  t_ok(await api.post(`${V1}/apps/shop/triggers/kv`, { script_id: thrower.body.id, collection_glob: "orders", ops: ["insert"], retry: { max_attempts: 2, base_ms: 20 } }));
  t_ok(await api.put(`${V1}/apps/shop/kv/orders/keys/o-1`, { value: { total: 42 } }));
  t_ok(await api.put(`${V1}/apps/shop/kv/orders/keys/${encodeURIComponent(XSS)}`, { value: { total: 1 } }));
  await waitUntil(async () => (await api.get(`${V1}/apps/shop/dead-letters/count`)).body.unresolved === 2, 20_000);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-background-networking"] });
  if (!existsSync(SHOTS)) mkdirSync(SHOTS, { recursive: true });
});
test.after.always(async () => {
  await browser?.close();
  await p?.close();
});

function t_ok(r: { status: number; body: unknown }): void {
  if (r.status >= 300) throw new Error(`setup: ${r.status} ${JSON.stringify(r.body)}`);
}

async function newPage(width = 1000, height = 700): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width, height }, baseURL: p.url });
  const page = await context.newPage();
  page.on("dialog", (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  return { context, page };
}

async function signIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto("/admin");
  await page.waitForURL(/\/admin\/login/);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/admin/login")), page.click("button[type=submit]")]);
}

const letters = async () =>
  p.db.any(sql.unsafe`SELECT id, resolution, replay_execution_id, last_error FROM dead_letters WHERE app_id = ${appId} ORDER BY created_at, id`) as Promise<any[]>;
const letterOf = async (key: string) => (await letters()).find((d) => String(d.last_error?.message).endsWith(key))!;
/** The CSRF token of the signed-in page (every page carries it in the sign-out form). */
const csrfOf = (page: Page) => page.inputValue("header form input[name=_csrf]");

test.serial("sign-in: a wrong password is refused on the form; the session cookie is HttpOnly and SameSite=Strict", async (t) => {
  const { context, page } = await newPage();
  await page.goto("/admin/login");
  await page.fill("input[name=email]", "admin@example.com");
  await page.fill("input[name=password]", "wrong-password");
  await page.click("button[type=submit]");
  t.regex(await page.textContent(".form-error") ?? "", /wrong email or password/);
  t.deepEqual(await context.cookies(), []);
  await signIn(page, "admin@example.com");
  const [cookie] = await context.cookies();
  t.like(cookie, { name: "picloud_session", httpOnly: true, sameSite: "Strict", path: "/admin" });
  t.is(await page.evaluate(() => document.cookie), "", "scripts cannot read the session");
  // the session is an ordinary token of the user, named "dashboard"
  const tokens = await p.db.any(sql.unsafe`SELECT name FROM api_tokens WHERE user_id = ${admin.id} AND name = 'dashboard'`);
  t.is(tokens.length, 1);
  await context.close();
});

test.serial("apps list: a red badge with the unresolved count, none for an app without dead letters; the app name is shown as text", async (t) => {
  const { context, page } = await newPage();
  await signIn(page, "admin@example.com");
  const shop = page.locator("tr[data-app=shop] .badge");
  t.is(await shop.textContent(), "2");
  t.true(await shop.isVisible());
  t.false(await page.locator("tr[data-app=quiet] .badge").isVisible());
  // the probe, as an app name: its text is there, no <img> was made, no dialog opened
  t.is(await page.locator("tr[data-app=quiet] td a").first().textContent(), XSS);
  t.is(await page.locator("main img").count(), 0);
  await page.setViewportSize({ width: 1000, height: 260 });
  await page.screenshot({ path: `${SHOTS}apps.png` });
  t.deepEqual(dialogs, []);
  await context.close();
});

test.serial("dead letters: expand a row, a viewer cannot replay (no button; a forged POST is 403), CSRF refusals, Replay runs a new attempt, Mark resolved hides the badge without a reload", async (t) => {
  const { context, page } = await newPage();
  await signIn(page, "admin@example.com");
  await page.click("tr[data-app=shop] a[href$='/dead-letters']");
  await page.waitForURL(/\/admin\/apps\/shop\/dead-letters$/);
  t.is(await page.locator("table.dead-letters tbody tr[data-dead-letter]").count(), 2);
  t.is(await page.locator("nav .badge").textContent(), "2");

  // the XSS probe travelled as a KV key into the dead letter's error message: shown as text
  const probe = await letterOf(XSS);
  const probeRow = page.locator(`tr[data-dead-letter="${probe.id}"]`);
  t.is(await probeRow.locator("td.error").textContent(), `script_error: refusing ${XSS}`);
  t.is(await page.locator("main img").count(), 0);

  // expand: payload and error history, fetched in place
  const first = await letterOf("o-1");
  const row = page.locator(`tr[data-dead-letter="${first.id}"]`);
  await row.locator("a.expand").click();
  const detail = page.locator(`tr[data-detail-of="${first.id}"]`);
  await detail.locator("h3", { hasText: "Payload" }).waitFor();
  t.regex(await detail.locator("pre.json").textContent() ?? "", /"key": "o-1"[\s\S]*"total": 42/);
  t.regex(await detail.locator("ol.history").textContent() ?? "", /2 attempts[\s\S]*refusing o-1/);
  await page.screenshot({ path: `${SHOTS}dead-letters.png`, fullPage: true });

  // the viewer: the page shows no Replay; a forged POST with the viewer's own CSRF token is refused
  const v = await newPage();
  await signIn(v.page, "viewer@example.com");
  await v.page.goto("/admin/apps/shop/dead-letters");
  t.is(await v.page.locator("tr[data-dead-letter]").count(), 2);
  t.is(await v.page.locator("button", { hasText: "Replay" }).count(), 0);
  const forged = await v.page.evaluate(
    async ([url, csrf]) => (await fetch(url!, { method: "POST", body: new URLSearchParams({ _csrf: csrf! }), headers: { accept: "application/json" } })).status,
    [`/admin/apps/shop/dead-letters/${first.id}/replay`, await csrfOf(v.page)],
  );
  t.is(forged, 403);
  t.is((await letterOf("o-1")).resolution, null);
  await v.context.close();

  // CSRF: the admin's own session, without the token, or from another origin: refused, nothing changes
  const noToken = await page.evaluate(async (url) => (await fetch(url, { method: "POST", body: new URLSearchParams({}), headers: { accept: "application/json" } })).status, `/admin/apps/shop/dead-letters/${probe.id}/resolve`);
  t.is(noToken, 403);
  const wrongToken = await page.evaluate(async (url) => (await fetch(url, { method: "POST", body: new URLSearchParams({ _csrf: "x".repeat(43) }), headers: { accept: "application/json" } })).status, `/admin/apps/shop/dead-letters/${probe.id}/resolve`);
  t.is(wrongToken, 403);
  const crossOrigin = await context.request.post(`/admin/apps/shop/dead-letters/${probe.id}/resolve`, { form: { _csrf: await csrfOf(page) }, headers: { origin: "http://evil.example" }, maxRedirects: 0 });
  t.is(crossOrigin.status(), 403);
  t.is((await letterOf(XSS)).resolution, null);

  // Replay, after fixing what made it fail: a new attempt runs (and succeeds); the row and the badge change in place
  t.is((await p.api(admin.token).put(`${V1}/apps/shop/kv/flags/keys/fixed`, { value: true })).status, 201);
  await page.evaluate(() => ((window as any).stillHere = true));
  await row.locator("button", { hasText: "Replay" }).click();
  await t.notThrowsAsync(row.locator("[data-field=resolution]", { hasText: "replayed" }).waitFor());
  t.is(await page.locator("nav .badge").textContent(), "1");
  const replayed = await letterOf("o-1");
  t.is(replayed.resolution, "replayed");
  let run: any;
  await waitUntil(async () => {
    run = await p.db.maybeOne(sql.unsafe`SELECT kind, status, response FROM executions WHERE id = ${replayed.replay_execution_id}`);
    return run?.status === "succeeded";
  }, 15_000);
  t.like(run, { kind: "replay", status: "succeeded" });

  // Mark resolved: the last open one; the badge disappears, still the same page (no reload)
  await probeRow.locator("button", { hasText: "Mark resolved" }).click();
  await probeRow.locator("[data-field=resolution]", { hasText: "ignored" }).waitFor();
  t.false(await page.locator("nav .badge").isVisible());
  t.true(await page.evaluate(() => (window as any).stillHere === true), "no reload happened");
  t.is((await p.api(admin.token).get(`${V1}/apps/shop/dead-letters/count`)).body.unresolved, 0);
  t.is((await letterOf(XSS)).resolution, "ignored");

  // the filter: open ones are none now; ignored holds the probe
  await page.goto("/admin/apps/shop/dead-letters?resolution=ignored");
  t.is(await page.locator("tr[data-dead-letter]").count(), 1);
  await page.goto("/admin");
  t.false(await page.locator("tr[data-app=shop] .badge").isVisible());
  t.deepEqual(dialogs, []);
  await context.close();
});

test.serial("app page: scripts (a compile error shown inline, create, edit), routes (sync/async; /admin is refused), triggers (disable/enable), members", async (t) => {
  const { context, page } = await newPage();
  await signIn(page, "admin@example.com");
  await page.goto("/admin/apps/shop");
  t.is(await page.locator("#scripts a", { hasText: "thrower" }).count(), 1);
  t.regex(await page.locator("#members").textContent() ?? "", /viewer@example\.com\s*viewer/);

  await page.click("text=New script");
  await page.fill("input[name=name]", "greeter");
  await page.fill("textarea[name=source]", "export default (ctx) => { return {");
  await page.click("button:has-text('Create')");
  t.regex(await page.locator(".form-error").textContent() ?? "", /\S/);
  t.is(await page.inputValue("textarea[name=source]"), "export default (ctx) => { return {", "the source typed is kept");
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM scripts WHERE name = 'greeter'`)), 0);
  await page.fill("textarea[name=source]", `export default (ctx) => ({ status: 200, body: { hi: ctx.request.params.name } })`);
  await Promise.all([page.waitForURL(/\/scripts\/[0-9a-f-]{36}$/), page.click("button:has-text('Create')")]);
  t.regex(await page.textContent("h1") ?? "", /greeter/);

  // routes: one under /admin is refused with the reason; a pattern route works for real
  await page.fill("#routes input[name=path]", "/admin/x");
  await page.click("button:has-text('Add route')");
  t.regex(await page.locator("#routes .form-error").textContent() ?? "", /\/admin belongs to the platform/);
  await page.fill("#routes input[name=path]", "/hi/:name");
  await page.selectOption("#routes select[name=path_kind]", "pattern");
  await page.click("button:has-text('Add route')");
  await page.locator("#routes td", { hasText: "/hi/:name" }).waitFor();
  await page.fill("#routes input[name=path]", "/later");
  await page.selectOption("#routes select[name=dispatch_mode]", "async");
  await page.click("button:has-text('Add route')");
  await page.locator("#routes tr", { hasText: "/later" }).locator("td", { hasText: "async" }).waitFor();
  await waitUntil(async () => (await fetch(`${p.url}/hi/pi`)).status === 200, 5_000);
  t.deepEqual(await (await fetch(`${p.url}/hi/pi`)).json(), { hi: "pi" });

  // edit: a broken source is refused inline and changes nothing; a good one bumps the version
  await page.fill("textarea[name=source]", "export default (");
  await page.click("button:has-text('Save')");
  t.regex(await page.locator("form .form-error").textContent() ?? "", /\S/);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT version FROM scripts WHERE name = 'greeter'`)), 1);

  // triggers: disable and enable again
  await page.goto("/admin/apps/shop");
  const trigger = page.locator("#triggers tr[data-trigger]");
  await trigger.locator("button", { hasText: "Disable" }).click();
  await page.locator("#triggers tr[data-trigger] td", { hasText: "disabled" }).waitFor();
  t.false(Boolean(await p.db.oneFirst(sql.unsafe`SELECT enabled FROM triggers WHERE app_id = ${appId}`)));
  await page.locator("#triggers tr[data-trigger] button", { hasText: "Enable" }).click();
  await page.locator("#triggers tr[data-trigger] td", { hasText: /^enabled$/ }).waitFor();
  t.true(Boolean(await p.db.oneFirst(sql.unsafe`SELECT enabled FROM triggers WHERE app_id = ${appId}`)));

  // the viewer sees the page without the forms that change things
  const v = await newPage();
  await signIn(v.page, "viewer@example.com");
  await v.page.goto("/admin/apps/shop");
  t.is(await v.page.locator("text=New script").count(), 0);
  t.is(await v.page.locator("#triggers button").count(), 0);
  await v.context.close();
  t.deepEqual(dialogs, []);
  await context.close();
});

test.serial("executions (status, duration, depth, root, console lines) and the KV browser (the probe key shown as text)", async (t) => {
  const { context, page } = await newPage();
  await signIn(page, "admin@example.com");
  await page.goto("/admin/apps/shop/executions?status=failed");
  const failed = page.locator("table.executions tbody tr");
  t.true((await failed.count()) >= 2);
  t.regex(await failed.first().textContent() ?? "", /kv\s*failed\s*\d+ ms\s*0/);
  // a replayed execution names its lineage root
  await page.goto("/admin/apps/shop/executions?status=succeeded");
  const replay = page.locator("table.executions tbody tr", { hasText: "replay" }).first();
  await replay.locator("td:nth-child(2) a").click();
  await page.waitForURL(/\/executions\/[0-9a-f-]{36}$/);
  t.regex(await page.locator("pre.console").textContent() ?? "", /log\s+order o-1/);
  t.regex(await page.locator("dl.facts").textContent() ?? "", /Root execution[0-9a-f]{8}/);
  t.true((await page.locator("table.executions tbody tr").count()) >= 2, "the lineage lists the original and the replay");

  await page.goto("/admin/apps/shop/kv");
  await page.click("text=orders");
  await page.waitForURL(/\/kv\/orders$/);
  t.is(await page.locator("table.keys a", { hasText: XSS }).count(), 1);
  t.is(await page.locator("main img").count(), 0);
  await page.locator("table.keys a", { hasText: "o-1" }).click();
  t.regex(await page.locator("pre.json").textContent() ?? "", /"total": 42/);
  t.deepEqual(dialogs, []);
  await context.close();
});

test.serial("a phone-sized screen: the apps list and the dead-letter page do not overflow sideways", async (t) => {
  const { context, page } = await newPage(375, 740);
  await signIn(page, "admin@example.com");
  for (const path of ["/admin", "/admin/apps/shop/dead-letters", "/admin/apps/shop"]) {
    await page.goto(path);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    t.true(scroll <= client, `${path}: ${scroll} > ${client}`);
  }
  await context.close();
});

test.serial("sign out ends the session: the token is revoked and pages ask to sign in again", async (t) => {
  const { context, page } = await newPage();
  await signIn(page, "admin@example.com");
  const before = Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM api_tokens WHERE user_id = ${admin.id} AND name = 'dashboard'`));
  await Promise.all([page.waitForURL(/\/admin\/login$/), page.click("header button:has-text('Sign out')")]);
  t.deepEqual(await context.cookies(), []);
  t.is(Number(await p.db.oneFirst(sql.unsafe`SELECT count(*) FROM api_tokens WHERE user_id = ${admin.id} AND name = 'dashboard'`)), before - 1);
  await page.goto("/admin/apps/shop/dead-letters");
  t.regex(page.url(), /\/admin\/login\?next=%2Fadmin%2Fapps%2Fshop%2Fdead-letters$/);
  // a POST without a session is 401 and changes nothing
  const r = await fetch(`${p.url}/admin/apps/shop/dead-letters/x/replay`, { method: "POST", headers: { accept: "application/json" } });
  t.is(r.status, 401);
  await context.close();
});

test("user routes under /admin (and the other platform paths) are refused by the admin API", async (t) => {
  const api = p.api(admin.token);
  const s = await api.post(`${V1}/apps/shop/scripts`, { name: "shadow", source: "export default () => 1" });
  for (const path of ["/admin", "/admin/apps", "/api/v1/x", "/healthz"]) {
    const r = await api.post(`${V1}/scripts/${s.body.id}/routes`, { path, path_kind: "prefix" });
    t.is(r.status, 400, path);
    t.like(r.body, { field: "path" });
  }
  t.is((await api.post(`${V1}/scripts/${s.body.id}/routes`, { path: "/administrator" })).status, 201, "only whole segments are reserved");
});
