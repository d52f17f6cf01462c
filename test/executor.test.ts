import test from "ava";
import { Executor, SdkError, checkSource, loadSourceChecker, type ExecutionJob, type ExecutionOutcome } from "../lib/executor/index.ts";

type Call = { tag: string };
let ex: Executor<Call>;
const seen: { tag: string; args: unknown[] }[] = [];

test.before(async () => {
  await loadSourceChecker();
  ex = await Executor.create<Call>({
    workers: 2,
    modules: [
      {
        name: "probe",
        prelude: "globalThis.probe = { echo: (x) => __host('probe.echo', [x]), fail: () => __host('probe.fail', []), crash: () => __host('probe.crash', []) };",
        handlers: {
          "probe.echo": async (call, args) => {
            seen.push({ tag: call.tag, args });
            await new Promise((r) => setTimeout(r, 5));
            return { echoed: args[0], by: call.tag };
          },
          "probe.fail": async () => {
            throw new SdkError("collection: must be a non-empty string");
          },
          "probe.crash": async () => {
            throw new Error("database is down");
          },
        },
      },
    ],
  });
});
test.after.always(() => ex?.close());

let n = 0;
const job = (source: string, extra: Partial<ExecutionJob["script"]> = {}, rest: Partial<ExecutionJob> = {}): ExecutionJob => ({
  executionId: `exec-${++n}`,
  script: { id: "script-1", name: "probe", source, version: 1, timeoutMs: 2000, memoryMb: 32, ...extra },
  app: { id: "app-1", slug: "demo" },
  triggerDepth: 0,
  ...rest,
});
const run = (source: string, extra: Partial<ExecutionJob["script"]> = {}, rest: Partial<ExecutionJob> = {}) => ex.run(job(source, extra, rest), { tag: "t" });
const ok = (t: { fail(m: string): void }, o: ExecutionOutcome) => {
  if (!o.ok) t.fail(`expected success, got ${JSON.stringify(o.error)}`);
  return o.ok ? o.response : { status: 0, headers: {}, body: "" };
};
const err = (t: { fail(m: string): void }, o: ExecutionOutcome) => {
  if (o.ok) t.fail(`expected failure, got ${JSON.stringify(o.response)}`);
  return o.ok ? { code: "none", message: "" } : o.error;
};

test("a response object is the HTTP response; object body is JSON", async (t) => {
  const r = ok(t, await run(`export default async () => ({ status: 201, headers: { "X-Hits": "3" }, body: { n: 3 } })`));
  t.is(r.status, 201);
  t.is(r.headers["x-hits"], "3");
  t.is(r.headers["content-type"], "application/json");
  t.deepEqual(JSON.parse(r.body), { n: 3 });
});

test("a string body is text unless the script sets a content-type", async (t) => {
  const a = ok(t, await run(`export default () => ({ status: 200, body: "hello" })`));
  t.is(a.body, "hello");
  t.is(a.headers["content-type"], "text/plain; charset=utf-8");
  const b = ok(t, await run(`export default () => ({ status: 200, headers: { "content-type": "text/html" }, body: "<b>x</b>" })`));
  t.is(b.headers["content-type"], "text/html");
});

test("a plain value is 200 JSON; undefined is 204", async (t) => {
  const a = ok(t, await run(`export default () => [1, "two", { three: 3 }]`));
  t.is(a.status, 200);
  t.deepEqual(JSON.parse(a.body), [1, "two", { three: 3 }]);
  // an object with other keys besides status/headers/body is a value, not a response
  const b = ok(t, await run(`export default () => ({ status: 201, extra: true })`));
  t.is(b.status, 200);
  t.deepEqual(JSON.parse(b.body), { status: 201, extra: true });
  const c = ok(t, await run(`export default async () => {}`));
  t.is(c.status, 204);
  t.is(c.body, "");
});

test("an invalid return value is invalid_script with a clear message", async (t) => {
  t.regex(err(t, await run(`export default () => ({ status: 42 })`)).message, /status must be an integer/);
  t.regex(err(t, await run(`export default () => ({ status: 200, headers: { a: 1 } })`)).message, /header "a" must be a string/);
  t.regex(err(t, await run(`export default () => () => 1`)).message, /not JSON-serializable/);
  t.is(err(t, await run(`export default () => ({ status: 200, body: 10n })`)).code, "invalid_script");
});

test("ctx carries request, app, script, execution id and depth; event only when triggered", async (t) => {
  const src = `export default (ctx) => ({ ctx, hasEvent: "event" in ctx })`;
  const request = { method: "GET", path: "/u/7", query: { a: "1" }, headers: { host: "x" }, body: null, params: { id: "7" } };
  const o = ok(t, await run(src, {}, { request, triggerDepth: 2 }));
  const { ctx, hasEvent } = JSON.parse(o.body);
  t.deepEqual(ctx.request, request);
  t.deepEqual(ctx.app, { id: "app-1", slug: "demo" });
  t.deepEqual(ctx.script, { id: "script-1", name: "probe" });
  t.regex(ctx.execution_id, /^exec-/);
  t.is(ctx.trigger_depth, 2);
  t.false(hasEvent);
  const withEvent = JSON.parse(ok(t, await run(src, {}, { event: { type: "kv", op: "insert" } })).body);
  t.deepEqual(withEvent.ctx.event, { type: "kv", op: "insert" });
});

test("console lines are captured with their level", async (t) => {
  const o = await run(`export default () => { console.log("a", 1, { b: 2 }); console.warn("careful"); console.error(new Error("bad")); }`);
  t.true(o.ok);
  t.deepEqual(o.logs.map((l) => [l.level, l.message.split("\n")[0]]), [
    ["log", 'a 1 {"b":2}'],
    ["warn", "careful"],
    ["error", "Error: bad"],
  ]);
});

test("console output is capped", async (t) => {
  const o = await run(`export default () => { for (let i = 0; i < 5000; i++) console.log("line " + i); }`);
  t.true(o.logs.length <= 201);
  t.regex(o.logs.at(-1)!.message, /truncated/);
});

test("a thrown error or rejected promise is script_error with message and stack", async (t) => {
  const a = err(t, await run(`export default () => { throw new TypeError("boom"); }`));
  t.is(a.code, "script_error");
  t.is(a.message, "TypeError: boom");
  t.regex((a as { stack?: string }).stack ?? "", /probe\.js:1/);
  const b = err(t, await run(`export default async () => { await null; throw new Error("later"); }`));
  t.is(b.code, "script_error");
  t.is(b.message, "later");
  const c = err(t, await run(`export default () => Promise.reject(new RangeError("nope"))`));
  t.is(c.message, "RangeError: nope");
});

test("a syntax error or a missing default export is invalid_script", async (t) => {
  const a = err(t, await run(`export default function ( {`));
  t.is(a.code, "invalid_script");
  t.regex(a.message, /SyntaxError/);
  const b = err(t, await run(`export const x = 1;`));
  t.is(b.code, "invalid_script");
  t.regex(b.message, /default export/);
});

test.serial("an endless loop times out within 100 ms of the deadline", async (t) => {
  const started = Date.now();
  const e = err(t, await run(`export default () => { for (;;) {} }`, { timeoutMs: 300 }));
  const took = Date.now() - started;
  t.is(e.code, "timeout");
  t.true(took >= 290 && took < 400, `took ${took} ms`);
});

test.serial("a promise that never settles times out at the deadline", async (t) => {
  const started = Date.now();
  const e = err(t, await run(`export default () => new Promise(() => {})`, { timeoutMs: 300 }));
  t.is(e.code, "timeout");
  t.true(Date.now() - started < 400);
});

test("a memory bomb is stopped with memory_limit and the next execution is fine", async (t) => {
  const started = Date.now();
  const e = err(t, await run(`export default () => { const a = []; for (;;) a.push("x".repeat(1000) + a.length); }`, { memoryMb: 16, timeoutMs: 5000 }));
  t.is(e.code, "memory_limit");
  t.true(Date.now() - started < 3000);
  t.is(ok(t, await run(`export default () => 1`, { memoryMb: 16 })).body, "1");
});

test("unbounded recursion is a clean script_error", async (t) => {
  const e = err(t, await run(`export default () => { const f = (n) => f(n + 1) + 1; return f(0); }`));
  t.is(e.code, "script_error");
  t.regex(e.message, /stack overflow/);
  t.true((await run(`export default () => 2`)).ok);
});

test.serial("an operation that ignores the interrupt is ended within deadline + 1 s; a concurrent execution is unharmed", async (t) => {
  const started = Date.now();
  const runaway = run(`export default () => "x".repeat(2 ** 29).length`, { timeoutMs: 200, memoryMb: 1024 });
  const innocent = run(`export default async () => { let s = 0; for (let i = 0; i < 1e5; i++) s += i; return s; }`, { timeoutMs: 5000 });
  const e = err(t, await runaway);
  t.is(e.code, "timeout");
  t.true(Date.now() - started < 1200, `took ${Date.now() - started} ms`);
  t.is(ok(t, await innocent).body, String((1e5 * (1e5 - 1)) / 2));
  t.true((await run(`export default () => 3`)).ok);
});

test("no host object reaches the sandbox", async (t) => {
  const o = ok(t, await run(`export default () => ({
    require: typeof require, process: typeof process, fetch: typeof fetch, setTimeout: typeof setTimeout,
    module: typeof module, globalIsOwn: Function("return this")() === globalThis,
    keys: Object.getOwnPropertyNames(Function("return this")()).filter((k) => ["process", "require", "Buffer", "fs", "std", "os", "module", "exports", "global"].includes(k)),
  })`));
  t.deepEqual(JSON.parse(o.body), { require: "undefined", process: "undefined", fetch: "undefined", setTimeout: "undefined", module: "undefined", globalIsOwn: true, keys: [] });
  const imp = err(t, await run(`import fs from "fs"; export default () => 1`));
  t.not(imp.code, "internal");
});

test("host calls: async results, exposed errors reject in the script, other failures are internal", async (t) => {
  const a = ok(t, await run(`export default async () => { const r = await probe.echo({ x: 1 }); try { await probe.fail(); } catch (e) { return { r, e: e.message }; } }`));
  t.deepEqual(JSON.parse(a.body), { r: { echoed: { x: 1 }, by: "t" }, e: "collection: must be a non-empty string" });
  t.true(seen.some((s) => s.tag === "t"));
  const b = err(t, await run(`export default async () => { await probe.crash(); return 1; }`));
  t.is(b.code, "internal");
  const c = err(t, await run(`export default () => __host("nope.nothing", [])`));
  t.is(c.code, "script_error");
  t.regex(c.message, /unknown host function/);
});

test("many concurrent executions each get their own answer", async (t) => {
  const outs = await Promise.all(
    Array.from({ length: 300 }, (_, i) => run(`export default async (ctx) => { const r = await probe.echo(${i}); return { i: ${i}, r: r.echoed }; }`)),
  );
  outs.forEach((o, i) => t.deepEqual(JSON.parse(ok(t, o).body), { i, r: i }));
});

test("checkSource: ok for a module, the compiler's message otherwise", (t) => {
  t.deepEqual(checkSource(`export default (ctx) => ctx`), { ok: true });
  // compiles, though quickjs-emscripten's compile-only result once misreported it as an error
  t.deepEqual(checkSource(`export default () => ({ status: 42 })`), { ok: true });
  const bad = checkSource(`export default function (ctx) {\n  return {;\n}`);
  t.false(bad.ok);
  t.regex((bad as { message: string }).message, /SyntaxError: .*line 2/);
});
