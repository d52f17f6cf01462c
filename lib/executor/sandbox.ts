// One QuickJS runtime + context on a capped module instance, prepared for one script version:
// SDK preludes evaluated, the script module evaluated, its default export kept. It runs one
// execution at a time; after a clean run the worker may keep it warm for the next execution
// of the same script version (so module scope persists between such runs, as in warm starts
// elsewhere). Globals are built host-side (no per-run JS to compile): `console`, `__host`.
import type { QuickJSContext, QuickJSDeferredPromise, QuickJSHandle, QuickJSRuntime, VmCallResult } from "quickjs-emscripten";
import type { HostReply } from "./protocol.ts";
import { DESCRIBE_SOURCE, InvalidReturn, parseDescribed, shapeResponse, type Described } from "./response.ts";
import type { ExecError, ExecutionJob, ExecutionOutcome, LogLevel, LogLine, ScriptResponse } from "./types.ts";
import { atCap, type Instance } from "./wasm.ts";

/**
 * QuickJS's own stack limit. Some C paths (the parser, JSON, Array.join) use far more native
 * stack per byte of QuickJS stack than plain calls: 256 KiB is clean for every shape we tried
 * in a worker with a 16 MiB stack (a 4 MiB one overflowed on deep nesting in the parser).
 */
export const STACK_BYTES = 256 * 1024; // with WORKER_STACK_MB (protocol.ts)
const MAX_LOG_LINES = 200;
const MAX_LOG_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 8 * 1024;
/** Time allowed to read a thrown value or a log argument once the deadline has passed. */
const AFTERMATH_MS = 50;
const LEVELS: LogLevel[] = ["log", "info", "warn", "error", "debug"];

/** What the worker provides to a run. */
export interface RunEnv {
  hostCall(name: string, argsJson: string): Promise<HostReply>;
  /** Around every stretch of QuickJS work, so the main thread can tell a runaway. */
  enterSlice(hardDeadline: number): void;
  leaveSlice(): void;
}

export type RunResult = {
  outcome: ExecutionOutcome;
  /** Whether the sandbox may serve the next execution of this script version. */
  reusable: boolean;
  /** Whether the module instance may host another sandbox (false after a trap or an out-of-memory). */
  instanceHealthy: boolean;
};

/** Ends a run with this error. */
class Finished extends Error {
  constructor(readonly error: ExecError) {
    super(error.message);
  }
}

const timeoutError = (ms: number): ExecError => ({ code: "timeout", message: `the script ran past its timeout of ${ms} ms` });
const memoryError = (mb: number): ExecError => ({ code: "memory_limit", message: `the script exceeded its memory limit of ${mb} MB` });

class Run {
  readonly started = performance.now();
  readonly deadline: number;
  readonly hardDeadline: number;
  readonly logs: LogLine[] = [];
  private logBytes = 0;
  private dropped = 0;
  readonly pending = new Set<QuickJSDeferredPromise>();
  hostCalls = 0;
  failure?: ExecError;
  /** A host-side exception from inside QuickJS: the instance is unusable. */
  fault?: unknown;
  wake?: () => void;
  private timer?: NodeJS.Timeout;
  finished = false;

  constructor(
    readonly job: ExecutionJob,
    readonly env: RunEnv,
    graceMs: number,
  ) {
    this.deadline = Date.now() + job.script.timeoutMs;
    this.hardDeadline = this.deadline + graceMs;
  }

  /** `make` is only called while the caps allow another line. */
  log(level: LogLevel, make: () => string): void {
    if (this.logs.length >= MAX_LOG_LINES || this.logBytes >= MAX_LOG_BYTES) {
      this.dropped++;
      return;
    }
    let message = make();
    const room = Math.min(MAX_LINE_CHARS, MAX_LOG_BYTES - this.logBytes);
    if (message.length > room) message = `${message.slice(0, room)}… [${message.length - room} more characters]`;
    this.logBytes += message.length;
    this.logs.push({ level, message, at: new Date().toISOString() });
  }

  closeLogs(): LogLine[] {
    if (this.dropped) this.logs.push({ level: "warn", message: `[console output truncated: ${this.dropped} more lines dropped]`, at: new Date().toISOString() });
    return this.logs;
  }

  fail(error: ExecError): void {
    this.failure ??= error;
    this.wake?.();
  }

  armTimer(): void {
    this.timer ??= setTimeout(() => this.fail(timeoutError(this.job.script.timeoutMs)), Math.max(0, this.deadline - Date.now()));
  }

  finish(): void {
    this.finished = true;
    clearTimeout(this.timer);
  }
}

export class Sandbox {
  private readonly rt: QuickJSRuntime;
  private readonly vm: QuickJSContext;
  // The realm's own functions, taken before any script code runs (a script replacing
  // JSON.parse or Reflect.get cannot reach the platform's marshalling).
  private readonly parseFn: QuickJSHandle;
  private readonly stringifyFn: QuickJSHandle;
  private readonly keysFn: QuickJSHandle;
  private readonly isArrayFn: QuickJSHandle;
  private readonly getFn: QuickJSHandle;
  private exportFn?: QuickJSHandle;
  /** DESCRIBE_SOURCE, made once the sandbox is reused. */
  private describeFn?: QuickJSHandle;
  private deadline = 0;
  private run?: Run;
  private preludesDone = false;
  uses = 0;
  /** Set once a host-side exception escaped QuickJS: never touch this instance again. */
  broken = false;

  constructor(
    readonly inst: Instance,
    /** script id, version and memory: what a warm sandbox may serve */
    readonly key: string,
    readonly source: string,
    private readonly preludes: { name: string; source: string }[],
    private readonly graceMs: number,
  ) {
    const rt = inst.mod.newRuntime();
    this.rt = rt;
    rt.setMaxStackSize(STACK_BYTES);
    rt.setInterruptHandler(() => Date.now() > this.deadline);
    const vm = rt.newContext();
    this.vm = vm;
    const g = vm.global;
    const take = (obj: string, name: string) => vm.getProp(g, obj).consume((o) => vm.getProp(o, name));
    this.parseFn = take("JSON", "parse");
    this.stringifyFn = take("JSON", "stringify");
    this.keysFn = take("Object", "keys");
    this.isArrayFn = take("Array", "isArray");
    this.getFn = take("Reflect", "get");

    const consoleObj = vm.newObject();
    for (const level of LEVELS) {
      vm.newFunction(level, (...args) => {
        this.run?.log(level, () => args.map((a) => this.describe(a)).join(" "));
      }).consume((fn) => vm.setProp(consoleObj, level, fn));
    }
    vm.setProp(g, "console", consoleObj);
    consoleObj.dispose();
    vm.newFunction("__host", (name, args) => this.hostCall(name, args)).consume((fn) =>
      vm.defineProp(g, "__host", { value: fn, configurable: false, enumerable: false }),
    );
  }

  /** Runs one execution. Never throws. */
  async execute(job: ExecutionJob, env: RunEnv): Promise<RunResult> {
    const run = new Run(job, env, this.graceMs);
    this.run = run;
    this.deadline = run.deadline;
    this.uses++;
    const owned: QuickJSHandle[] = [];
    let response: ScriptResponse | undefined;
    let error: ExecError | undefined;
    try {
      if (!this.exportFn) await this.load(run);
      else if (!this.describeFn) this.slice(run, () => this.makeDescribe());
      const fn = this.exportFn!;
      const ctx = this.slice(run, () => this.fromJson(contextJson(job)));
      owned.push(ctx);
      const called = this.slice(run, () => this.vm.callFunction(fn, this.vm.undefined, ctx));
      if (called.error) throw this.thrown(run, called.error, "script_error");
      owned.push(called.value);
      const value = await this.settle(run, called.value, owned);
      response = shapeResponse(this.slice(run, () => this.describeValue(value)));
    } catch (err) {
      error = this.classify(run, err);
    }
    run.finish();
    const healthy = !run.fault && !this.broken;
    if (healthy) {
      try {
        // Host calls still in flight (the script did not await them, or time ran out).
        for (const d of run.pending) if (d.alive) d.dispose();
        for (const h of owned) if (h.alive) h.dispose();
      } catch {
        this.broken = true;
      }
    } else this.broken = true;
    const reusable =
      !this.broken &&
      this.exportFn !== undefined &&
      (error === undefined || error.code === "script_error" || error.code === "invalid_script") &&
      run.pending.size === 0 &&
      !this.rt.hasPendingJob();
    this.run = undefined;
    this.deadline = 0;
    const durationMs = Math.round((performance.now() - run.started) * 1000) / 1000;
    const logs = run.closeLogs();
    const outcome: ExecutionOutcome = response ? { ok: true, response, logs, durationMs } : { ok: false, error: error!, logs, durationMs };
    return { outcome, reusable, instanceHealthy: !this.broken && !atCap(this.inst) };
  }

  /** Whether the script module is evaluated (the sandbox can serve its script right away). */
  get loaded(): boolean {
    return this.exportFn !== undefined && !this.broken;
  }

  /** The main thread gave up on the current run: end it now. */
  cancel(): void {
    const run = this.run;
    if (run) run.fail(timeoutError(run.job.script.timeoutMs));
  }

  /** Frees the runtime; false when that failed (the instance must not be reused). */
  dispose(): boolean {
    if (this.broken) return false;
    try {
      for (const h of [this.parseFn, this.stringifyFn, this.keysFn, this.isArrayFn, this.getFn, this.exportFn, this.describeFn]) if (h?.alive) h.dispose();
      this.vm.dispose();
      this.rt.dispose();
      return true;
    } catch {
      // A leaked handle makes dispose() abort; the instance goes with it.
      this.broken = true;
      return false;
    }
  }

  /** SDK preludes, then the script module (top-level await may make host calls). */
  private async load(run: Run): Promise<void> {
    const vm = this.vm;
    if (!this.preludesDone) {
      this.slice(run, () => {
        for (const p of this.preludes) {
          const r = vm.evalCode(p.source, `picloud:${p.name}`);
          if (r.error) {
            const e = this.describeThrown(r.error);
            throw new Finished({ code: "internal", message: `SDK module ${p.name} failed to load: ${e.message}` });
          }
          r.value.dispose();
        }
      });
      this.preludesDone = true;
    }
    const filename = `${this.scriptName(run)}.js`;
    const evaluated = this.slice(run, () => vm.evalCode(this.source, filename, { type: "module" }));
    if (evaluated.error) {
      const e = this.describeThrown(evaluated.error);
      const compileError = (e.name === "SyntaxError" && e.lineNumber !== undefined) || /could not load module/.test(e.message);
      if (compileError) {
        const at = /:(\d+):(\d+)\s*$/.exec(e.stack ?? "");
        const where = at ? ` (line ${at[1]}, column ${at[2]})` : e.lineNumber !== undefined ? ` (line ${e.lineNumber})` : "";
        const message = /could not load module/.test(e.message) ? `${e.message}: scripts cannot import modules` : `${e.name}: ${e.message}${where}`;
        throw new Finished({ code: "invalid_script", message });
      }
      throw new Finished(this.errorFrom(run, e, "script_error"));
    }
    const owned: QuickJSHandle[] = [evaluated.value];
    try {
      const ns = await this.settle(run, evaluated.value, owned);
      const fn = this.slice(run, () => vm.getProp(ns, "default"));
      if (vm.typeof(fn) !== "function") {
        fn.dispose();
        throw new Finished({ code: "invalid_script", message: "the script has no default export function" });
      }
      this.exportFn = fn;
    } finally {
      for (const h of owned) if (h.alive) h.dispose();
    }
  }

  private scriptName(run: Run): string {
    return run.job.script.name.replace(/[^\w.-]/g, "_") || "script";
  }

  /** Runs pending jobs and waits for host replies until `h` settles; returns its value. */
  private async settle(run: Run, h: QuickJSHandle, owned: QuickJSHandle[]): Promise<QuickJSHandle> {
    for (;;) {
      this.slice(run, () => this.drain(run));
      if (run.fault) throw run.fault;
      if (run.failure) throw new Finished(run.failure);
      const state = this.vm.getPromiseState(h);
      if (state.type === "fulfilled") {
        if (state.notAPromise) return h;
        owned.push(state.value);
        return state.value;
      }
      if (state.type === "rejected") throw this.thrown(run, state.error, "script_error");
      run.armTimer();
      await new Promise<void>((resolve) => (run.wake = resolve));
      run.wake = undefined;
    }
  }

  private drain(run: Run): void {
    const r = this.rt.executePendingJobs();
    if (r.error) {
      const f = this.thrown(run, r.error, "script_error");
      run.failure ??= f.error;
    }
  }

  /** The sandbox's `__host(name, args)`: a promise settled by the main thread's handler. */
  private hostCall(nameH: QuickJSHandle, argsH: QuickJSHandle | undefined): QuickJSHandle | VmCallResult<QuickJSHandle> {
    const run = this.run;
    const vm = this.vm;
    if (!run || run.finished) throw new Error("no execution is running");
    if (vm.typeof(nameH) !== "string") throw new TypeError("__host: the name must be a string");
    const name = vm.getString(nameH);
    let args = "[]";
    if (argsH && vm.typeof(argsH) !== "undefined") {
      const r = vm.callFunction(this.stringifyFn, vm.undefined, argsH);
      if (r.error) return r; // the script's own error (a cycle, a BigInt), thrown back at it
      const json = r.value.consume((v) => (vm.typeof(v) === "string" ? vm.getString(v) : undefined));
      if (json === undefined) throw new TypeError(`${name}: arguments must be JSON-serializable`);
      args = json;
    }
    const deferred = vm.newPromise();
    run.pending.add(deferred);
    run.hostCalls++;
    void run.env.hostCall(name, args).then((reply) => this.onReply(run, deferred, reply));
    return deferred.handle;
  }

  private onReply(run: Run, deferred: QuickJSDeferredPromise, reply: HostReply): void {
    if (run.finished || this.run !== run) return;
    run.pending.delete(deferred);
    try {
      this.slice(run, () => {
        if (reply.ok) {
          if (reply.value === undefined) deferred.resolve();
          else this.fromJson(reply.value).consume((v) => deferred.resolve(v));
        } else if (reply.fatal) {
          run.failure ??= { code: "internal", message: reply.message };
        } else {
          this.vm.newError({ name: reply.name, message: reply.message }).consume((e) => deferred.reject(e));
        }
      });
      if (deferred.alive) deferred.dispose();
    } catch (err) {
      if (err instanceof Finished) run.failure ??= err.error;
      else run.fault ??= err;
    }
    run.wake?.();
  }

  private slice<T>(run: Run, fn: () => T): T {
    run.env.enterSlice(run.hardDeadline);
    try {
      return fn();
    } finally {
      run.env.leaveSlice();
    }
  }

  /** JSON text → a value in the sandbox (the realm's original JSON.parse). */
  private fromJson(json: string): QuickJSHandle {
    const s = this.vm.newString(json);
    try {
      const r = this.vm.callFunction(this.parseFn, this.vm.undefined, s);
      if (r.error) throw new Finished(this.errorFrom(this.run!, this.describeThrown(r.error), "internal"));
      return r.value;
    } finally {
      s.dispose();
    }
  }

  /** A sandbox value → JSON text, undefined when it has none; throws Finished when stringify throws. */
  private toJson(h: QuickJSHandle): string | undefined {
    const r = this.vm.callFunction(this.stringifyFn, this.vm.undefined, h);
    if (r.error) throw this.thrown(this.run!, r.error, "invalid_script");
    return r.value.consume((v) => (this.vm.typeof(v) === "string" ? this.vm.getString(v) : undefined));
  }

  private call(fn: QuickJSHandle, ...args: QuickJSHandle[]): QuickJSHandle {
    const r = this.vm.callFunction(fn, this.vm.undefined, ...args);
    if (r.error) throw this.thrown(this.run!, r.error, "invalid_script");
    return r.value;
  }

  private makeDescribe(): void {
    const outer = this.vm.evalCode(DESCRIBE_SOURCE, "picloud:describe");
    if (outer.error) throw this.thrown(this.run!, outer.error, "script_error");
    this.describeFn = outer.value.consume((f) => this.call(f, this.keysFn, this.isArrayFn, this.stringifyFn, this.getFn));
  }

  /** The script's value read for the return rule; its getters, toJSON and proxies run here. */
  private describeValue(h: QuickJSHandle): Described {
    const vm = this.vm;
    if (this.describeFn) {
      return parseDescribed(this.call(this.describeFn, h).consume((s) => vm.getString(s)));
    }
    // Host-side, for a sandbox's first run (not worth compiling DESCRIBE_SOURCE for one run).
    const type = vm.typeof(h);
    if (type === "undefined") return { kind: "undefined" };
    const prop = (o: QuickJSHandle, key: string) => vm.newString(key).consume((k) => this.call(this.getFn, o, k));
    const isArray = (o: QuickJSHandle) => this.call(this.isArrayFn, o).consume((b) => vm.typeof(b) === "boolean" && vm.dump(b) === true);
    const keys = (o: QuickJSHandle) => JSON.parse(this.call(this.keysFn, o).consume((k) => this.toJson(k) ?? "[]")) as string[];
    const noJson = (t: string) => t === "function" || t === "symbol" || t === "undefined";
    if (type === "object" && !vm.eq(h, vm.null) && !isArray(h)) {
      const ks = keys(h);
      if (ks.includes("status") && ks.every((k) => k === "status" || k === "headers" || k === "body")) {
        const status = prop(h, "status").consume((x) => (vm.typeof(x) === "number" ? vm.getNumber(x) : undefined));
        if (status !== undefined) {
          const headers = prop(h, "headers").consume((hh): Extract<Described, { kind: "response" }>["headers"] => {
            const t = vm.typeof(hh);
            if (t === "undefined") return null;
            if (t !== "object" || vm.eq(hh, vm.null) || isArray(hh)) return "bad";
            return keys(hh).map((name) =>
              prop(hh, name).consume((x): [string, string | null, string] => {
                const xt = vm.typeof(x);
                return [name, xt === "string" ? vm.getString(x) : null, xt];
              }),
            );
          });
          return prop(h, "body").consume((b): Described => {
            const bodyType = vm.typeof(b);
            const body = bodyType === "string" ? vm.getString(b) : noJson(bodyType) ? null : (this.toJson(b) ?? null);
            return { kind: "response", status, headers, bodyType, body };
          });
        }
      }
    }
    return { kind: "value", type, json: noJson(type) ? null : (this.toJson(h) ?? null) };
  }

  /** A thrown value (consumed) as the Finished that ends the run. */
  private thrown(run: Run, h: QuickJSHandle, code: "script_error" | "invalid_script"): Finished {
    return new Finished(this.errorFrom(run, this.describeThrown(h), code));
  }

  private errorFrom(run: Run, e: Thrown, code: ExecError["code"]): ExecError {
    if (e.name === "InternalError" && e.message === "interrupted") return timeoutError(run.job.script.timeoutMs);
    if (e.name === "InternalError" && e.message === "out of memory") return memoryError(run.job.script.memoryMb);
    // Out of memory while making the error itself, QuickJS throws null.
    if (e.bare && atCap(this.inst)) return memoryError(run.job.script.memoryMb);
    const prefix = code === "invalid_script" ? "invalid return value: " : "";
    const message = `${prefix}${e.name && e.name !== "Error" ? `${e.name}: ` : ""}${e.message}`;
    return e.stack ? { code, message, stack: e.stack } : { code, message };
  }

  /** What a thrown value says (consumes the handle); reads only data the script cannot stall. */
  private describeThrown(h: QuickJSHandle): Thrown {
    return this.afterDeadline(() => {
      try {
        const vm = this.vm;
        if (vm.typeof(h) === "object" && !vm.eq(h, vm.null)) {
          const message = this.readString(h, "message");
          if (message !== undefined) {
            const lineNumber = this.readNumber(h, "lineNumber");
            return { name: this.readString(h, "name"), message, stack: this.readString(h, "stack") || undefined, lineNumber };
          }
        }
        return { message: this.describe(h), bare: vm.typeof(h) !== "object" || vm.eq(h, vm.null) };
      } finally {
        if (h.alive) h.dispose();
      }
    });
  }

  /** A console argument or a thrown non-error as text. */
  private describe(h: QuickJSHandle): string {
    const vm = this.vm;
    const type = vm.typeof(h);
    switch (type) {
      case "string":
        return vm.getString(h);
      case "number":
        return String(vm.getNumber(h));
      case "undefined":
        return "undefined";
      case "boolean":
      case "bigint":
        return String(vm.dump(h));
      case "function":
        return `[Function${this.readString(h, "name") ? ` ${this.readString(h, "name")}` : ""}]`;
      case "symbol":
        return vm.getSymbol(h).toString();
      default: {
        if (vm.eq(h, vm.null)) return "null";
        const message = this.readString(h, "message");
        const stack = this.readString(h, "stack");
        if (message !== undefined && stack !== undefined) {
          const name = this.readString(h, "name") ?? "Error";
          return `${name}: ${message}${stack ? `\n${stack.trimEnd()}` : ""}`;
        }
        try {
          return this.toJson(h) ?? `[${type}]`;
        } catch {
          return "[object]";
        }
      }
    }
  }

  private readString(h: QuickJSHandle, key: string): string | undefined {
    const v = this.readProp(h, key);
    if (!v) return undefined;
    return v.consume((x) => (this.vm.typeof(x) === "string" ? this.vm.getString(x) : undefined));
  }

  private readNumber(h: QuickJSHandle, key: string): number | undefined {
    const v = this.readProp(h, key);
    if (!v) return undefined;
    return v.consume((x) => (this.vm.typeof(x) === "number" ? this.vm.getNumber(x) : undefined));
  }

  /** Reflect.get, with whatever it throws swallowed. */
  private readProp(h: QuickJSHandle, key: string): QuickJSHandle | undefined {
    const r = this.vm.newString(key).consume((k) => this.vm.callFunction(this.getFn, this.vm.undefined, h, k));
    if (r.error) {
      r.error.dispose();
      return undefined;
    }
    return r.value;
  }

  /** Reading a thrown value may run its getters: give that a little time even past the deadline. */
  private afterDeadline<T>(fn: () => T): T {
    const saved = this.deadline;
    this.deadline = Math.max(saved, Date.now() + AFTERMATH_MS);
    try {
      return fn();
    } finally {
      this.deadline = saved;
    }
  }

  private classify(run: Run, err: unknown): ExecError {
    if (err instanceof Finished) return err.error;
    if (err instanceof InvalidReturn) return { code: "invalid_script", message: `invalid return value: ${err.message}` };
    // A host-side exception from inside QuickJS (an abort, a trap, the thread's own stack):
    // the instance is unusable whatever happened.
    run.fault ??= err;
    this.broken = true;
    if (atCap(this.inst)) return memoryError(run.job.script.memoryMb);
    if (err instanceof RangeError && /call stack/i.test(err.message)) return { code: "script_error", message: "InternalError: stack overflow" };
    return { code: "internal", message: `the sandbox failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** `bare`: not an object (a thrown primitive or null). */
type Thrown = { name?: string; message: string; stack?: string; lineNumber?: number; bare?: boolean };

function contextJson(job: ExecutionJob): string {
  const ctx: Record<string, unknown> = {
    request: job.request ?? null,
    app: { id: job.app.id, slug: job.app.slug },
    script: { id: job.script.id, name: job.script.name },
    execution_id: job.executionId,
    trigger_depth: job.triggerDepth,
  };
  if (job.event !== undefined) ctx.event = job.event;
  return JSON.stringify(ctx);
}
