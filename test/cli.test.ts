// The picloud CLI as a user runs it: a child process (the package.json bin) against the real
// platform (gateway, dispatcher, sweeper processes), its config in a temporary file.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startPlatform, waitUntil, type Platform } from "./helpers/platform.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = path.join(root, (JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { bin: { picloud: string } }).bin.picloud);

let p: Platform;
let dir: string;
/** The owner's config, written by `picloud bootstrap` in before(). */
let ownerConfig: string;

type Ran = { code: number; stdout: string; stderr: string };

/** Runs `picloud args…` with its config file (PICLOUD_CONFIG) and extra environment. */
function picloud(args: string[], opts: { config?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  const env: Record<string, string | undefined> = { ...process.env, PICLOUD_CONFIG: opts.config ?? ownerConfig, ...opts.env };
  for (const k of ["PICLOUD_URL", "PICLOUD_TOKEN", "PICLOUD_PASSWORD"]) if (!opts.env?.[k]) delete env[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env, cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const ownerToken = async () => JSON.parse(await readFile(ownerConfig, "utf8")).token as string;

/** Runs it and expects exit code 0; the output parsed when --json was passed. */
async function ok(args: string[], opts?: Parameters<typeof picloud>[1]): Promise<any> {
  const r = await picloud(args, opts);
  if (r.code !== 0) throw new Error(`picloud ${args.join(" ")} → exit ${r.code}\n${r.stderr}${r.stdout}`);
  return args.includes("--json") ? JSON.parse(r.stdout) : r.stdout;
}

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "picloud-cli-"));
  ownerConfig = path.join(dir, "owner.json");
  p = await startPlatform({ dispatchers: 1 });
  await ok(["bootstrap", "--url", p.url, "--email", "owner@example.com", "--password", "owner-password"]);
  await ok(["apps", "create", "demo", "--name", "Demo app"]);
});
test.after.always(async () => {
  await p?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("login: a wrong password is exit 1 with the server's message; a right one saves the URL and token (mode 0600); an unreachable server is exit 3", async (t) => {
  const config = path.join(dir, "login", "config.json");
  const wrong = await picloud(["login", "--url", p.url, "--email", "owner@example.com", "--password", "not-the-password"], { config });
  t.is(wrong.code, 1);
  t.is(wrong.stderr, "picloud login: wrong email or password (HTTP 401 unauthorized)\n");
  await t.throwsAsync(stat(config), undefined, "nothing saved");

  const noPassword = await picloud(["login", "--url", p.url, "--email", "owner@example.com"], { config });
  t.is(noPassword.code, 2);
  t.regex(noPassword.stderr, /missing --password \(or PICLOUD_PASSWORD/);

  t.regex(await ok(["login", "--url", p.url, "--email", "owner@example.com"], { config, env: { PICLOUD_PASSWORD: "owner-password" } }), /signed in as\s+owner@example\.com/);
  t.is((await stat(config)).mode & 0o777, 0o600);
  const saved = JSON.parse(await readFile(config, "utf8"));
  t.is(saved.url, p.url);
  t.is((await p.api(saved.token).get("/api/v1/admin/apps")).status, 200, "the saved token works");
  t.true((await ok(["apps", "list", "--json"], { config })).items.some((a: any) => a.slug === "demo"));

  const closed = await freePort();
  const away = await picloud(["apps", "list", "--url", `http://127.0.0.1:${closed}`], { config, env: { PICLOUD_TOKEN: saved.token } });
  t.is(away.code, 3);
  t.is(away.stderr, `picloud apps list: cannot reach picloud at http://127.0.0.1:${closed}: connection refused (is it running? start it with npm start)\n`);
  const notSignedIn = await picloud(["apps", "list"], { config: path.join(dir, "nobody.json") });
  t.is(notSignedIn.code, 2);
  t.regex(notSignedIn.stderr, /not signed in to http:\/\/localhost:8080: run picloud login/);
});

test("apps create and list: a table, and the API's JSON with --json", async (t) => {
  const created = await ok(["apps", "create", "shop", "--name", "The shop", "--json"]);
  t.like(created, { slug: "shop", name: "The shop" });
  const table = await ok(["apps"]);
  t.regex(table, /│ slug\s+│ name\s+│ role\s+│ id/);
  t.regex(table, new RegExp(`│ shop\\s+│ The shop\\s+│ [a-z_]+\\s+│ ${created.id}`));
  const page = await ok(["apps", "list", "--json", "--limit", "1"]);
  t.is(page.items.length, 1);
  t.truthy(page.cursor);
  t.regex(await ok(["apps", "list", "--limit", "1"]), /\nmore: --cursor \S+/);
  const taken = await picloud(["apps", "create", "shop"]);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /^picloud apps create: .*shop.* \(HTTP 409 conflict\)\n$/);
});

test("deploy with a sync route: created and callable; the same deploy changes nothing; a changed file is a new version on the same route", async (t) => {
  const file = path.join(dir, "hello.js");
  await writeFile(file, `export default (ctx) => ({ status: 200, body: { hello: ctx.request.params.name } })`);
  const first = await ok(["deploy", file, "--app", "demo", "--route", "/cli/hello/:name", "--method", "GET"]);
  t.regex(first, /script created\s+hello \(version 1\)/);
  t.regex(first, /route created\s+GET \/cli\/hello\/:name \(sync\)/);
  const called = await fetch(`${p.url}/cli/hello/pi`);
  t.is(called.status, 200);
  t.deepEqual(await called.json(), { hello: "pi" });
  t.is((await fetch(`${p.url}/cli/hello/pi`, { method: "POST" })).status, 404, "GET only");

  const again = await ok(["deploy", file, "--app", "demo", "--route", "/cli/hello/:name", "--method", "GET", "--json"]);
  t.like(again, { script_action: "unchanged", route_action: "unchanged", script: { name: "hello", version: 1 } });

  await writeFile(file, `export default (ctx) => ({ status: 200, body: { hi: ctx.request.params.name } })`);
  const changed = await ok(["deploy", file, "--app", "demo", "--route", "/cli/hello/:name", "--method", "get,post", "--json"]);
  t.like(changed, { script_action: "updated", route_action: "updated", script: { version: 2 }, route: { id: again.route.id, methods: ["GET", "POST"] } });
  await waitUntil(async () => (await fetch(`${p.url}/cli/hello/pi`, { method: "POST" })).status === 200, 5_000);
  t.deepEqual(await (await fetch(`${p.url}/cli/hello/pi`)).json(), { hi: "pi" });
  t.is((await p.api(await ownerToken()).get(`/api/v1/admin/scripts/${again.script.id}/routes`)).body.items.length, 1, "one route, updated in place");
});

test("deploy --async: 202, then logs --wait shows the execution succeeded with its console lines", async (t) => {
  const file = path.join(dir, "later.js");
  await writeFile(file, `export default (ctx) => { console.log("got", ctx.request.body.n); return { doubled: ctx.request.body.n * 2 }; }`);
  t.regex(await ok(["deploy", file, "--app", "demo", "--route", "/cli/later", "--async"]), /route created\s+any method \/cli\/later \(async\)/);
  const accepted = await fetch(`${p.url}/cli/later`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ n: 21 }) });
  t.is(accepted.status, 202);
  const { execution_id } = await accepted.json();
  const shown = await ok(["logs", execution_id, "--wait"]);
  t.regex(shown, new RegExp(`execution\\s+${execution_id}`));
  t.regex(shown, /status\s+succeeded/);
  t.regex(shown, /kind\s+http_async/);
  t.regex(shown, /script\s+later \([0-9a-f-]{36}\)/);
  t.regex(shown, /duration\s+\d+ ms/);
  t.regex(shown, /result\s+200 \{"doubled":42\}/);
  t.regex(shown, /console:\n\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+log\s+got 21/);
  t.like(await ok(["logs", execution_id, "--json"]), { id: execution_id, status: "succeeded", logs: [{ message: "got 21" }] });
  const missing = await picloud(["logs", "00000000-0000-4000-8000-000000000000"]);
  t.is(missing.code, 1);
  t.is(missing.stderr, "picloud logs: execution not found (HTTP 404 not_found)\n");
});

test("deploy of a source with a syntax error: exit 1 with the compiler's message, and no script", async (t) => {
  const file = path.join(dir, "broken.js");
  await writeFile(file, `export default (ctx) => { return {; }`);
  const r = await picloud(["deploy", file, "--app", "demo", "--route", "/cli/broken"]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^picloud deploy: .*broken\.js does not compile: .*SyntaxError.*\n$/s);
  t.is(r.stdout, "");
  const scripts = (await p.api(await ownerToken()).get("/api/v1/admin/apps/demo/scripts")).body.items.map((s: any) => s.name);
  t.false(scripts.includes("broken"));
  t.is((await fetch(`${p.url}/cli/broken`)).status, 404);
});

test("kv set, get and list; a value that is not JSON is exit 2", async (t) => {
  t.regex(await ok(["kv", "set", "--app", "demo", "users", "u/1", '{"name":"Ada"}']), /inserted\s+users \/ u\/1/);
  t.regex(await ok(["kv", "set", "--app", "demo", "users", "u/1", '{"name":"Ada","admin":true}']), /updated\s+users \/ u\/1/);
  await ok(["kv", "set", "--app", "demo", "users", "u/2", "42", "--ttl", "3600"]);
  t.is(await ok(["kv", "get", "--app", "demo", "users", "u/1"]), `{\n  "name": "Ada",\n  "admin": true\n}\n`);
  t.like(await ok(["kv", "get", "--app", "demo", "users", "u/2", "--json"]), { collection: "users", key: "u/2", value: 42 });
  t.regex(await ok(["kv", "list", "--app", "demo"]), /│ users\s+│ 2\s+│/);
  const keys = await ok(["kv", "list", "--app", "demo", "users", "--json"]);
  t.deepEqual(keys.items.map((k: any) => k.key), ["u/1", "u/2"]);
  t.truthy(keys.items[1].expires_at);
  t.deepEqual((await ok(["kv", "list", "--app", "demo", "users", "--prefix", "u/2", "--json"])).items.map((k: any) => k.key), ["u/2"]);

  const bad = await picloud(["kv", "set", "--app", "demo", "users", "u/3", "{name:1}"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^picloud kv set: <value-json> is not valid JSON \(.*position 1\)\n$/);
  const text = await picloud(["kv", "set", "--app", "demo", "users", "u/3", "Ada"]);
  t.is(text.code, 2);
  t.regex(text.stderr, /^picloud kv set: <value-json> is not valid JSON \(.*\); text needs JSON quotes: '"Ada"'\n$/);
  const gone = await picloud(["kv", "get", "--app", "demo", "users", "u/3"]);
  t.is(gone.code, 1);
  t.is(gone.stderr, "picloud kv get: key not found (HTTP 404 not_found)\n");
});

test("dead letters from a throwing KV trigger: list, replay (a new failed execution, a new dead letter), resolve", async (t) => {
  const file = path.join(dir, "audit.js");
  await writeFile(file, `export default (ctx) => { throw new Error("cannot audit " + ctx.event.key) }`);
  await ok(["deploy", file, "--app", "demo"]);
  t.regex(await ok(["triggers", "add", "--app", "demo", "--script", "audit", "--collection", "orders*", "--ops", "insert", "--max-attempts", "2"]), /retry\s+2 × exponential 100 ms ±20%/);
  t.regex(await ok(["triggers", "list", "--app", "demo"]), /│ kv\s+│ audit\s+│ orders\*\s+│ insert\s+│/);
  await ok(["kv", "set", "--app", "demo", "orders-2026", "o-1", '{"total":3}']);

  let letters: any[] = [];
  await waitUntil(async () => {
    letters = (await ok(["dead-letters", "list", "--app", "demo", "--json"])).items;
    return letters.length === 1;
  }, 15_000);
  const [letter] = letters;
  t.like(letter, { kind: "kv", attempts: 2, resolution: null, last_error: { message: "cannot audit o-1" } });
  t.regex(await ok(["dead-letters", "list", "--app", "demo"]), new RegExp(`│ ${letter.id} │ kv\\s+│ 2\\s+│ script_error: cannot audit o-1\\s+│ open`));

  const replayed = await ok(["dead-letters", "replay", letter.id, "--app", "demo"]);
  t.regex(replayed, /resolution\s+replayed/);
  const replayId = /replayed as\s+(\S+)/.exec(replayed)?.[1];
  t.truthy(replayId);
  t.regex(await ok(["logs", replayId!, "--wait"]), /status\s+failed[\s\S]*error\s+script_error: cannot audit o-1/);
  let open: any[] = [];
  await waitUntil(async () => {
    open = (await ok(["dead-letters", "list", "--app", "demo", "--resolution", "unresolved", "--json"])).items;
    return open.length === 1;
  }, 15_000);
  t.like(open[0], { kind: "replay", execution_id: replayId });

  t.regex(await ok(["dead-letters", "resolve", open[0].id, "--app", "demo"]), /resolution\s+ignored/);
  t.deepEqual((await ok(["dead-letters", "list", "--app", "demo", "--resolution", "unresolved", "--json"])).items, []);
  const twice = await picloud(["dead-letters", "resolve", open[0].id, "--app", "demo"]);
  t.is(twice.code, 1);
  t.regex(twice.stderr, /already ignored \(HTTP 409 conflict\)\n$/);
});

test("usage errors are exit 2 with one line naming what was wrong, before anything is sent", async (t) => {
  const cases: [string[], string][] = [
    [["kv", "get", "users", "u/1"], "picloud kv get: missing --app <slug> (see picloud kv get --help)"],
    [["kv", "set", "--app", "demo", "users"], "picloud kv set: missing <key> (see picloud kv set --help)"],
    [["deploy", "x.js", "--app", "demo", "--async"], "picloud deploy: --async needs --route <path>"],
    [["deploy", "missing.js", "--app", "demo"], "picloud deploy: cannot read missing.js: ENOENT"],
    [["apps", "list", "--limit", "500"], 'picloud apps list: --limit must be a whole number from 1 to 200, not "500"'],
    [["apps", "list", "--colour"], "picloud apps list: unknown option --colour"],
    [["dead-letters", "replay", "--app"], "picloud dead-letters replay: --app needs a value"],
    [["triggers", "add", "--app", "demo", "--script", "audit"], "picloud triggers add: give either --collection <glob> (a KV trigger) or --dead-letter"],
    [["kv"], "picloud: kv needs one of: get, set, list, delete"],
    [["frobnicate"], 'picloud: unknown command "frobnicate" (picloud --help lists them)'],
  ];
  for (const [args, message] of cases) {
    const r = await picloud(args);
    t.is(r.code, 2, args.join(" "));
    t.is(r.stderr, `${message}\n`, args.join(" "));
  }
  const help = await picloud(["kv", "set", "--help"]);
  t.is(help.code, 0);
  t.regex(help.stdout, /^usage: picloud kv set <collection> <key> <value-json> \[options\]/);
  t.regex(help.stdout, /--ttl <secs>/);
});
