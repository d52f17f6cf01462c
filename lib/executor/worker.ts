// A worker thread: runs several executions at once (interleaved at host-call awaits), each in
// a sandbox of its own, and asks the main thread to run host calls. The main thread may
// terminate it at any moment (a run that ignores the interrupt); nothing here outlives that.
import { parentPort, workerData } from "node:worker_threads";
import { SandboxPool } from "./pool.ts";
import { SLICE_DEADLINE, SLICE_RUN, type FromWorker, type HostReply, type ToWorker, type WorkerInit } from "./protocol.ts";
import type { RunEnv, RunResult, Sandbox } from "./sandbox.ts";
import type { ExecutionJob } from "./types.ts";
import { useCompiledWasm } from "./wasm.ts";

const port = parentPort!;
const init = workerData as WorkerInit;
useCompiledWasm(init.wasm);
const slice = new Float64Array(init.slice);
const pool = new SandboxPool(init.preludes, init.warmLimit, init.graceMs);
const send = (m: FromWorker) => port.postMessage(m);

// Emscripten prints "Aborted(…)" when QuickJS traps; the run that caused it reports it instead.
const printError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  if (typeof args[0] === "string" && args[0].startsWith("Aborted(")) return;
  printError(...args);
};

/** Runs by id, for a cancel from the main thread. */
const running = new Map<number, Sandbox | "starting">();
const cancelled = new Set<number>();
const calls = new Map<number, (r: HostReply) => void>();
let nextCall = 0;

port.on("message", (m: ToWorker) => {
  if (m.t === "reply") {
    const resolve = calls.get(m.callId);
    calls.delete(m.callId);
    resolve?.(m);
  } else if (m.t === "run") {
    void run(m.id, m.job);
  } else if (m.t === "cancel") {
    const sb = running.get(m.id);
    if (sb === "starting") cancelled.add(m.id);
    else sb?.cancel();
  }
});

async function run(id: number, job: ExecutionJob): Promise<void> {
  send({ t: "started", id });
  running.set(id, "starting");
  const mine = new Set<number>();
  let sb: Sandbox;
  try {
    sb = await pool.checkout(job);
  } catch (err) {
    running.delete(id);
    const message = `could not prepare a sandbox: ${err instanceof Error ? err.message : String(err)}`;
    send({ t: "done", id, outcome: { ok: false, error: { code: "internal", message }, logs: [], durationMs: 0 } });
    return;
  }
  running.set(id, sb);
  const env: RunEnv = {
    hostCall: (name, args) =>
      new Promise((resolve) => {
        const callId = nextCall++;
        mine.add(callId);
        calls.set(callId, resolve);
        send({ t: "call", id, callId, name, args });
      }),
    enterSlice: (hardDeadline) => {
      slice[SLICE_RUN] = id;
      slice[SLICE_DEADLINE] = hardDeadline;
    },
    leaveSlice: () => {
      slice[SLICE_DEADLINE] = 0;
    },
  };
  if (cancelled.delete(id)) {
    // The main thread gave up while the sandbox was being prepared.
    running.delete(id);
    const message = `the script ran past its timeout of ${job.script.timeoutMs} ms`;
    send({ t: "done", id, outcome: { ok: false, error: { code: "timeout", message }, logs: [], durationMs: 0 } });
    pool.checkin(sb, sb.loaded, true);
    return;
  }
  let result: RunResult;
  try {
    result = await sb.execute(job, env);
  } catch (err) {
    // execute() reports every fault as an outcome; this is a bug of ours: drop the instance.
    const message = `the sandbox failed: ${err instanceof Error ? err.message : String(err)}`;
    result = { outcome: { ok: false, error: { code: "internal", message }, logs: [], durationMs: 0 }, reusable: false, instanceHealthy: false };
    sb.broken = true;
  }
  running.delete(id);
  for (const callId of mine) calls.delete(callId);
  send({ t: "done", id, outcome: result.outcome });
  pool.checkin(sb, result.reusable, result.instanceHealthy);
}

// The first execution should not pay for loading QuickJS (32 MB: the default memory_mb).
await pool.prewarm(32);
send({ t: "ready" });
