// Runs one execution in QuickJS. Lives in a worker thread (worker.ts); the main thread keeps
// the hard deadline. Each execution has exclusive use of a QuickJS module instance whose
// WebAssembly.Memory is capped (setMemoryLimit does not cap memory in quickjs-emscripten
// 0.32), plus its own runtime (deadline, stack limit, job queue) and context.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  RELEASE_SYNC,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSWASMModule,
} from "quickjs-emscripten";
import { BASE_PRELUDE } from "./prelude.ts";
import type { ExecError, ExecutionJob, ExecutionOutcome, LogLevel, LogLine, ScriptResponse } from "./types.ts";

const PAGE = 64 * 1024;
const BASE_MIB = 16; // what the emscripten build starts with
const STACK_BYTES = 256 * 1024;
const MAX_LOG_LINES = 200;
const MAX_LOG_BYTES = 64 * 1024;

let wasmModule: Promise<WebAssembly.Module> | undefined;
function compiledWasm(): Promise<WebAssembly.Module> {
  wasmModule ??= (async () => {
    const require = createRequire(import.meta.url);
    const file = require.resolve("@jitl/quickjs-wasmfile-release-sync/wasm");
    return WebAssembly.compile(await readFile(file));
  })();
  return wasmModule;
}

type Instance = { mod: QuickJSWASMModule; memory: WebAssembly.Memory; capPages: number; basePages: number };

/** Module instances by memory cap; an instance serves one execution at a time. */
class InstancePool {
  private idle = new Map<number, Instance[]>();

  async acquire(memoryMb: number): Promise<Instance> {
    const capPages = ((BASE_MIB + memoryMb) * 1024 * 1024) / PAGE;
    const free = this.idle.get(capPages)?.pop();
    if (free) return free;
    const basePages = (BASE_MIB * 1024 * 1024) / PAGE;
    const memory = new WebAssembly.Memory({ initial: basePages, maximum: capPages });
    const wasm = await compiledWasm();
    const mod = await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmModule: wasm, wasmMemory: memory }));
    return { mod, memory, capPages, basePages };
  }

  /** Keep an instance only while its heap has not grown much (WASM memory never shrinks). */
  release(inst: Instance): void {
    const grownPages = inst.memory.buffer.byteLength / PAGE - inst.basePages;
    if (grownPages > (4 * 1024 * 1024) / PAGE) return;
    const list = this.idle.get(inst.capPages) ?? [];
    if (list.length < 8) list.push(inst);
    this.idle.set(inst.capPages, list);
  }
}

const pool = new InstancePool();

export type HostCaller = (name: string, argsJson: string) => Promise<{ ok: true; value: string | undefined } | { ok: false; message: string; fatal: boolean }>;

class Finished extends Error {
  constructor(readonly error: ExecError) {
    super(error.message);
  }
}

export async function runJob(job: ExecutionJob, hostCall: HostCaller, preludes: string[]): Promise<ExecutionOutcome> {
  const started = performance.now();
  const logs: LogLine[] = [];
  let logBytes = 0;
  let truncated = false;
  const addLog = (level: LogLevel, message: string) => {
    if (logs.length >= MAX_LOG_LINES || logBytes + message.length > MAX_LOG_BYTES) {
      if (!truncated) logs.push({ level: "warn", message: "[console output truncated]", at: new Date().toISOString() });
      truncated = true;
      return;
    }
    logBytes += message.length;
    logs.push({ level, message, at: new Date().toISOString() });
  };
  const done = (r: { response: ScriptResponse } | { error: ExecError }): ExecutionOutcome => {
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    return "response" in r ? { ok: true, response: r.response, logs, durationMs } : { ok: false, error: r.error, logs, durationMs };
  };

  const inst = await pool.acquire(job.script.memoryMb);
  let healthy = true;
  let rt: QuickJSRuntime | undefined;
  let vm: QuickJSContext | undefined;
  const handles: QuickJSHandle[] = [];
  const keep = <T extends QuickJSHandle>(h: T): T => (handles.push(h), h);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const deadline = Date.now() + job.script.timeoutMs;
    rt = inst.mod.newRuntime();
    rt.setMaxStackSize(STACK_BYTES);
    rt.setMemoryLimit(job.script.memoryMb * 1024 * 1024);
    rt.setInterruptHandler(() => Date.now() > deadline);
    vm = rt.newContext();
    const ctxVm = vm;
    const runtime = rt;

    keep(vm.newFunction("__log_raw", (level, text) => {
      addLog(ctxVm.getString(level) as LogLevel, ctxVm.getString(text));
    })).consume((fn) => ctxVm.setProp(ctxVm.global, "__log_raw", fn));

    let fatal: ExecError | undefined;
    let wake: (() => void) | undefined;
    const pending = new Set<{ dispose(): void }>();
    vm.newFunction("__host_raw", (nameH, argsH) => {
      const name = ctxVm.getString(nameH);
      const args = ctxVm.getString(argsH);
      const deferred = ctxVm.newPromise();
      pending.add(deferred);
      hostCall(name, args).then((reply) => {
        if (finished || !ctxVm.alive) return;
        pending.delete(deferred);
        if (reply.ok) {
          if (reply.value === undefined) deferred.resolve();
          else ctxVm.newString(reply.value).consume((s) => deferred.resolve(s));
        } else if (reply.fatal) {
          fatal = { code: "internal", message: reply.message };
        } else {
          ctxVm.newError({ name: "Error", message: reply.message }).consume((e) => deferred.reject(e));
        }
        deferred.dispose();
        wake?.();
      });
      return deferred.handle;
    }).consume((fn) => ctxVm.setProp(ctxVm.global, "__host_raw", fn));

    const internals = keep(unwrap(vm, vm.evalCode(BASE_PRELUDE, "picloud:prelude"), "prelude"));
    for (const [i, src] of preludes.entries()) unwrap(vm, vm.evalCode(src, `picloud:sdk${i}`), "sdk prelude").dispose();
    const callFn = keep(vm.getProp(internals, "call"));
    const finishFn = keep(vm.getProp(internals, "finish"));

    // The script: an ES module whose default export is called with ctx.
    const modResult = vm.evalCode(job.script.source, `${job.script.name}.js`, { type: "module" });
    if (modResult.error) {
      const err = modResult.error.consume((e) => ctxVm.dump(e));
      throw new Finished(classify(err, "invalid_script", deadline));
    }
    const ns = keep(modResult.value);
    const fn = keep(vm.getProp(ns, "default"));
    if (vm.typeof(fn) !== "function") throw new Finished({ code: "invalid_script", message: "the script has no default export function" });

    const ctx: Record<string, unknown> = {
      request: job.request ?? { method: "POST", path: "/", query: {}, headers: {}, body: null, params: {} },
      app: job.app,
      script: { id: job.script.id, name: job.script.name },
      execution_id: job.executionId,
      trigger_depth: job.triggerDepth,
    };
    if (job.event !== undefined) ctx.event = job.event;
    const ctxJson = keep(vm.newString(JSON.stringify(ctx)));
    const called = vm.callFunction(callFn, vm.undefined, fn, ctxJson);
    if (called.error) throw new Finished(classify(called.error.consume((e) => ctxVm.dump(e)), "script_error", deadline));
    const returned = keep(called.value);

    // Settle: a promise result runs as host replies arrive, until it settles or time runs out.
    let settled: QuickJSHandle;
    const state = vm.getPromiseState(returned);
    if (state.type === "fulfilled") settled = state.notAPromise ? returned : keep(state.value);
    else if (state.type === "rejected") throw new Finished(classify(state.error.consume((e) => ctxVm.dump(e)), "script_error", deadline));
    else {
      const outcome = vm.resolvePromise(returned);
      const timeLeft = deadline - Date.now();
      const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(0, timeLeft))));
      const drain = () => {
        const r = runtime.executePendingJobs();
        if (r.error) {
          const e = r.error.consume((h) => ctxVm.dump(h));
          if (isInterrupted(e)) fatal = { code: "timeout", message: `the script ran past its timeout of ${job.script.timeoutMs} ms` };
          else if (isOom(e)) fatal = { code: "memory_limit", message: `the script exceeded its memory limit of ${job.script.memoryMb} MB` };
        }
      };
      let bail: () => void = () => undefined;
      const bailed = new Promise<"bail">((resolve) => (bail = () => resolve("bail")));
      wake = () => {
        drain();
        if (fatal) bail();
      };
      drain();
      if (fatal) bail();
      const winner = await Promise.race([outcome, timedOut, bailed]);
      if (fatal) throw new Finished(fatal);
      if (winner === "timeout") throw new Finished({ code: "timeout", message: `the script did not finish within its timeout of ${job.script.timeoutMs} ms` });
      if (winner === "bail") throw new Finished(fatal ?? { code: "internal", message: "execution stopped" });
      if (winner.error) throw new Finished(classify(winner.error.consume((e) => ctxVm.dump(e)), "script_error", deadline));
      settled = keep(winner.value);
    }

    const fin = vm.callFunction(finishFn, vm.undefined, settled);
    if (fin.error) {
      const e = fin.error.consume((h) => ctxVm.dump(h));
      throw new Finished(classify(e, "invalid_script", deadline, "invalid return value: "));
    }
    const shaped = JSON.parse(fin.value.consume((h) => ctxVm.getString(h))) as Shaped;
    return done(toResponse(shaped));
  } catch (err) {
    if (err instanceof Finished) {
      if (err.error.code === "memory_limit" || err.error.code === "internal") healthy = false;
      return done({ error: err.error });
    }
    // A host-side exception from inside QuickJS (abort, WASM trap): the instance is done for.
    healthy = false;
    const full = inst.memory.buffer.byteLength / PAGE >= inst.capPages - 16;
    return done({ error: full ? { code: "memory_limit", message: `the script exceeded its memory limit of ${job.script.memoryMb} MB` } : { code: "internal", message: String(err) } });
  } finally {
    finished = true;
    if (timer) clearTimeout(timer);
    try {
      for (const h of handles.reverse()) if (h.alive) h.dispose();
      vm?.dispose();
      rt?.dispose();
    } catch {
      healthy = false; // a leaked handle aborts dispose(): retire the instance
    }
    if (healthy) pool.release(inst);
  }
}

type Shaped =
  | { kind: "empty" }
  | { kind: "value"; json: string }
  | { kind: "response"; status: unknown; headers: unknown; text: string | null; json: string | null };

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";

function toResponse(s: Shaped): { response: ScriptResponse } | { error: ExecError } {
  if (s.kind === "empty") return { response: { status: 204, headers: {}, body: "" } };
  if (s.kind === "value") return { response: { status: 200, headers: { "content-type": JSON_TYPE }, body: s.json } };
  const invalid = (message: string) => ({ error: { code: "invalid_script" as const, message: `invalid return value: ${message}` } });
  if (typeof s.status !== "number" || !Number.isInteger(s.status) || s.status < 200 || s.status > 599) {
    return invalid(`status must be an integer from 200 to 599, got ${JSON.stringify(s.status)}`);
  }
  if (s.headers === null || typeof s.headers !== "object" || Array.isArray(s.headers)) return invalid("headers must be an object of strings");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers as Record<string, unknown>)) {
    if (typeof v !== "string") return invalid(`header ${JSON.stringify(k)} must be a string`);
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n\0]/.test(v)) return invalid(`header ${JSON.stringify(k)} is not a valid HTTP header`);
    headers[k.toLowerCase()] = v;
  }
  if (s.status === 204 || s.status === 304) return { response: { status: s.status, headers, body: "" } };
  if (s.text !== null) {
    headers["content-type"] ??= TEXT_TYPE;
    return { response: { status: s.status, headers, body: s.text } };
  }
  if (s.json !== null) {
    headers["content-type"] ??= JSON_TYPE;
    return { response: { status: s.status, headers, body: s.json } };
  }
  return { response: { status: s.status, headers, body: "" } };
}

type Dumped = { name?: string; message?: string; stack?: string } | unknown;

const isInterrupted = (e: Dumped) => typeof e === "object" && e !== null && (e as { message?: string }).message === "interrupted";
const isOom = (e: Dumped) => typeof e === "object" && e !== null && /out of memory/i.test(String((e as { message?: string }).message));

function classify(e: Dumped, code: "invalid_script" | "script_error", deadline: number, prefix = ""): ExecError {
  if (isInterrupted(e) || (Date.now() > deadline && typeof e === "object" && e !== null && (e as { name?: string }).name === "InternalError")) {
    return { code: "timeout", message: "the script ran past its timeout" };
  }
  if (isOom(e)) return { code: "memory_limit", message: "the script exceeded its memory limit" };
  if (typeof e === "object" && e !== null && "message" in e) {
    const { name, message, stack } = e as { name?: string; message?: string; stack?: string };
    const text = `${prefix}${name && name !== "Error" ? `${name}: ` : ""}${message ?? ""}`;
    return stack ? { code, message: text, stack } : { code, message: text };
  }
  return { code, message: `${prefix}${typeof e === "string" ? e : JSON.stringify(e)}` };
}

function unwrap(vm: QuickJSContext, r: ReturnType<QuickJSContext["evalCode"]>, what: string): QuickJSHandle {
  if (r.error) throw new Error(`${what} failed: ${JSON.stringify(r.error.consume((e) => vm.dump(e)))}`);
  return r.value;
}
