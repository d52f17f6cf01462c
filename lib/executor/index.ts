// The executor: runs scripts in QuickJS sandboxes inside a few worker threads, each worker
// interleaving several executions at their host-call awaits. The main thread runs the host
// calls (SDK handlers use the database) and keeps a hard deadline per execution: some single
// QuickJS operations never check the interrupt handler ('x'.repeat(2**29), huge sorts, deep
// try/catch recursion), and a worker stuck in one past its deadline is terminated (a booted
// standby takes its place at once). Executions that were on it run again on a fresh worker
// when they had made no host call yet. Inside a worker (pool.ts, sandbox.ts) every execution
// has a module instance of its own with capped memory, and a script version's prepared
// sandbox is kept warm for its next execution.
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { bundled, bundlePath } from "../layout.ts";
import type { Logger } from "../log.ts";
import { SLICE_DEADLINE, SLICE_RUN, SLICE_WORDS, WORKER_STACK_MB, type FromWorker, type HostReply, type ToWorker, type WorkerInit } from "./protocol.ts";
import type { ExecError, ExecutionJob, ExecutionOutcome, ExecutorOptions } from "./types.ts";
import { compiledWasm } from "./wasm.ts";

export * from "./types.ts";
export { checkSource, loadSourceChecker } from "./check.ts";

/** Past the hard deadline, how often to look again at a run its worker has not finished. */
const RECHECK_MS = 1000;
/** A worker that has not acknowledged a given-up run for this long, outside any run, is wedged. */
const WEDGED_MS = 30_000;
const RESPAWN_BACKOFF_MS = [0, 250, 1000, 5000];
/**
 * What a worker thread runs. In a bundled service (plain node) the worker is a bundle of its own;
 * from the sources (tests, benches under tsx) worker-entry.mjs loads worker.ts through tsx, since
 * a worker thread does not inherit its parent's loader hooks.
 */
const WORKER_FILE = bundled ? pathToFileURL(bundlePath("executor-worker")) : new URL("./worker-entry.mjs", import.meta.url);

type Handler<C> = (call: C, args: unknown[]) => Promise<unknown>;

type Pending<C> = {
  job: ExecutionJob;
  call: C;
  resolve: (o: ExecutionOutcome) => void;
  /** The caller has its outcome (the worker may still be winding the run down). */
  settled: boolean;
  retried: boolean;
  hostCalls: number;
  startedAt?: number;
  givenUpAt?: number;
  timer?: NodeJS.Timeout;
};

class Slot<C> {
  ready = false;
  dead = false;
  readonly running = new Map<number, Pending<C>>();
  readonly slice: Float64Array;
  constructor(
    readonly worker: Worker,
    sab: SharedArrayBuffer,
  ) {
    this.slice = new Float64Array(sab);
  }
}

const failure = (error: ExecError, startedAt?: number): ExecutionOutcome => ({
  ok: false,
  error,
  logs: [],
  durationMs: startedAt === undefined ? 0 : Math.round(performance.now() - startedAt),
});

export class Executor<C = unknown> {
  private readonly slots: Slot<C>[] = [];
  /** A booted worker kept aside to replace a terminated one at once (booting takes ~0.4 s). */
  private standby: Slot<C> | undefined;
  private readonly useStandby: boolean;
  private readonly queue: Pending<C>[] = [];
  private readonly handlers = new Map<string, Handler<C>>();
  private nextId = 1;
  private closed = false;
  private failedSpawns = 0;
  private readonly workers: number;
  private readonly perWorker: number;
  private readonly graceMs: number;
  private readonly warmLimit: number;
  private readonly preludes: { name: string; source: string }[];
  private readonly log: Logger | undefined;

  private constructor(
    opts: ExecutorOptions<C>,
    private readonly wasm: WebAssembly.Module,
  ) {
    this.workers = Math.max(1, Math.floor(opts.workers ?? 1));
    this.perWorker = Math.max(1, Math.floor(opts.maxConcurrentPerWorker ?? 8));
    this.graceMs = Math.max(0, opts.hardStopGraceMs ?? 500);
    this.log = opts.logger;
    this.preludes = (opts.modules ?? []).map((m) => ({ name: m.name, source: m.prelude }));
    this.warmLimit = Math.max(0, Math.floor(opts.warmSandboxesPerWorker ?? 16));
    this.useStandby = opts.standbyWorker ?? true;
    for (const m of opts.modules ?? []) for (const [name, h] of Object.entries(m.handlers)) this.handlers.set(name, h);
  }

  static async create<C>(opts: ExecutorOptions<C> = {}): Promise<Executor<C>> {
    const ex = new Executor<C>(opts, await compiledWasm());
    const started = Array.from({ length: ex.workers }, () => ex.spawn());
    if (ex.useStandby) started.push(ex.spawn(true));
    try {
      await Promise.all(started);
    } catch (err) {
      await ex.close();
      throw err;
    }
    return ex;
  }

  /** Runs one execution. Never rejects: faults of the script or the platform are outcomes. */
  run(job: ExecutionJob, call: C): Promise<ExecutionOutcome> {
    if (this.closed) return Promise.resolve(failure({ code: "internal", message: "the executor is closed" }));
    return new Promise((resolve) => {
      this.queue.push({ job, call, resolve, settled: false, retried: false, hostCalls: 0 });
      this.pump();
    });
  }

  /** Executions running or waiting for a worker. */
  get inFlight(): number {
    return this.queue.length + this.slots.reduce((n, s) => n + s.running.size, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const all = [...this.queue.splice(0), ...this.slots.flatMap((s) => [...s.running.values()])];
    for (const p of all) {
      clearTimeout(p.timer);
      this.settle(p, failure({ code: "internal", message: "the executor is closed" }, p.startedAt));
    }
    const slots = this.slots.splice(0);
    if (this.standby) slots.push(this.standby);
    this.standby = undefined;
    for (const s of slots) s.dead = true;
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  // --- dispatch ---------------------------------------------------------------------------

  private pump(): void {
    while (this.queue.length) {
      let best: Slot<C> | undefined;
      for (const s of this.slots) {
        if (!s.ready || s.dead || s.running.size >= this.perWorker) continue;
        if (!best || s.running.size < best.running.size) best = s;
      }
      if (!best) return;
      const p = this.queue.shift()!;
      const id = this.nextId++;
      best.running.set(id, p);
      this.post(best, { t: "run", id, job: p.job });
    }
  }

  private post(slot: Slot<C>, m: ToWorker): void {
    if (!slot.dead) slot.worker.postMessage(m);
  }

  private settle(p: Pending<C>, outcome: ExecutionOutcome): void {
    if (p.settled) return;
    p.settled = true;
    p.resolve(outcome);
  }

  private onMessage(slot: Slot<C>, m: FromWorker): void {
    if (m.t === "ready") return;
    const p = slot.running.get(m.id);
    if (!p) return;
    switch (m.t) {
      case "started":
        p.startedAt = performance.now();
        p.timer = setTimeout(() => this.overdue(slot, m.id), p.job.script.timeoutMs + this.graceMs);
        break;
      case "call":
        void this.hostCall(slot, p, m);
        break;
      case "done":
        clearTimeout(p.timer);
        slot.running.delete(m.id);
        if (!m.outcome.ok && m.outcome.error.code === "internal" && !p.settled) {
          this.log?.error({ execution_id: p.job.executionId, script_id: p.job.script.id, error: m.outcome.error.message }, "execution failed inside the platform");
        }
        this.settle(p, m.outcome);
        this.pump();
        break;
    }
  }

  private async hostCall(slot: Slot<C>, p: Pending<C>, m: Extract<FromWorker, { t: "call" }>): Promise<void> {
    p.hostCalls++;
    let reply: HostReply;
    if (p.settled) {
      reply = { ok: false, name: "Error", message: "the execution has ended", fatal: true };
    } else {
      try {
        const handler = this.handlers.get(m.name);
        if (!handler) throw Object.assign(new Error(`unknown host function ${m.name}`), { expose: true });
        const args = JSON.parse(m.args) as unknown;
        if (!Array.isArray(args)) throw Object.assign(new TypeError(`${m.name}: arguments must be an array`), { expose: true });
        const value = await handler(p.call, args);
        reply = { ok: true, value: value === undefined ? undefined : JSON.stringify(value) };
      } catch (err) {
        const exposed = err instanceof Error && (err as { expose?: unknown }).expose === true;
        if (!exposed) this.log?.error({ err, host_call: m.name, execution_id: p.job.executionId, script_id: p.job.script.id }, "host call failed");
        reply = exposed
          ? { ok: false, name: err.name === "SdkError" ? "Error" : err.name, message: err.message, fatal: false }
          : { ok: false, name: "Error", message: `internal error in ${m.name}`, fatal: true };
      }
    }
    if (slot.running.get(m.id) === p) this.post(slot, { t: "reply", callId: m.callId, ...reply });
  }

  // --- deadlines --------------------------------------------------------------------------

  /** A run passed its hard deadline without its outcome. */
  private overdue(slot: Slot<C>, id: number): void {
    const p = slot.running.get(id);
    if (!p || slot.dead) return;
    const now = Date.now();
    const sliceDeadline = slot.slice[SLICE_DEADLINE]!;
    if (sliceDeadline !== 0) {
      if (now >= sliceDeadline) {
        // The worker is stuck inside one run (this one or another) past that run's deadline.
        this.kill(slot, slot.slice[SLICE_RUN]!, "a script ran past its deadline in an operation that ignores interrupts");
        return;
      }
      // Its own stretch of work (deadlines are on the worker's clock), or another run's that
      // will be a runaway soon: look again right at that deadline (a kill re-runs this one).
      if (slot.slice[SLICE_RUN] === id || sliceDeadline - now <= this.graceMs) {
        p.timer = setTimeout(() => this.overdue(slot, id), sliceDeadline - now + 1);
        return;
      }
    }
    // Not a runaway: this run waits behind others on a busy worker. Its caller hears now; the
    // worker drops the run when it gets to it.
    if (!p.settled) {
      p.givenUpAt = Date.now();
      this.settle(p, failure({ code: "timeout", message: `the script ran past its timeout of ${p.job.script.timeoutMs} ms` }, p.startedAt));
      this.post(slot, { t: "cancel", id });
    } else if (sliceDeadline === 0 && p.givenUpAt !== undefined && Date.now() - p.givenUpAt > WEDGED_MS) {
      this.kill(slot, -1, "a worker stopped answering");
      return;
    }
    p.timer = setTimeout(() => this.overdue(slot, id), sliceDeadline ? Math.min(RECHECK_MS, Math.max(1, sliceDeadline - now + 1)) : RECHECK_MS);
  }

  /**
   * Terminates a worker. Its runaway run times out; the others run again on a fresh worker if
   * they made no host call yet (nothing of theirs happened), else they end "internal".
   */
  private kill(slot: Slot<C>, runawayId: number, why: string): void {
    if (slot.dead) return;
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    void slot.worker.terminate();
    const runaway = slot.running.get(runawayId);
    this.log?.warn({ execution_id: runaway?.job.executionId, script_id: runaway?.job.script.id, in_flight: slot.running.size }, `terminating an executor worker: ${why}`);
    const again: Pending<C>[] = [];
    for (const [id, p] of slot.running) {
      clearTimeout(p.timer);
      if (p.settled) continue;
      if (id === runawayId) {
        this.settle(p, failure({ code: "timeout", message: `the script ran past its timeout of ${p.job.script.timeoutMs} ms` }, p.startedAt));
      } else if (p.hostCalls === 0 && !p.retried && !this.closed) {
        p.retried = true;
        p.startedAt = undefined;
        again.push(p);
      } else {
        this.settle(p, failure({ code: "internal", message: "the execution was stopped with its sandbox worker (another script ran away, or the worker failed)" }, p.startedAt));
      }
    }
    slot.running.clear();
    this.queue.unshift(...again);
    if (!this.closed) this.replace();
    this.pump();
  }

  private replace(): void {
    const s = this.standby;
    if (s?.ready && !s.dead) {
      this.standby = undefined;
      this.slots.push(s);
      void this.spawn(true).catch(() => undefined);
    } else void this.spawn().catch(() => undefined);
  }

  // --- workers ----------------------------------------------------------------------------

  private spawn(asStandby = false): Promise<void> {
    const sab = new SharedArrayBuffer(SLICE_WORDS * Float64Array.BYTES_PER_ELEMENT);
    const init: WorkerInit = { preludes: this.preludes, wasm: this.wasm, slice: sab, warmLimit: this.warmLimit, graceMs: this.graceMs };
    const worker = new Worker(WORKER_FILE, {
      workerData: init,
      resourceLimits: { stackSizeMb: WORKER_STACK_MB },
    });
    const slot = new Slot<C>(worker, sab);
    if (asStandby) this.standby = slot;
    else this.slots.push(slot);
    const forget = () => {
      if (this.standby === slot) this.standby = undefined;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
    };
    return new Promise<void>((resolve, reject) => {
      worker.on("message", (m: FromWorker) => {
        if (m.t === "ready" && !slot.ready) {
          slot.ready = true;
          this.failedSpawns = 0;
          resolve();
          if (slot.dead) void worker.terminate(); // closed meanwhile
          else this.pump();
        } else this.onMessage(slot, m);
      });
      worker.on("error", (err) => {
        this.log?.error({ err }, "executor worker failed");
        if (!slot.ready) reject(err);
      });
      worker.on("exit", (code) => {
        if (slot.dead || this.closed) return;
        if (!slot.ready || this.standby === slot) {
          // It never came up (or the spare died): try again later rather than in a tight loop.
          slot.dead = true;
          forget();
          reject(new Error(`executor worker exited with code ${code} before it was ready`));
          const delay = RESPAWN_BACKOFF_MS[Math.min(this.failedSpawns++, RESPAWN_BACKOFF_MS.length - 1)]!;
          if (!asStandby && !this.slots.some((s) => s.ready && !s.dead)) {
            for (const p of this.queue.splice(0)) this.settle(p, failure({ code: "internal", message: "no sandbox worker is available" }));
          }
          setTimeout(() => !this.closed && void this.spawn(asStandby).catch(() => undefined), delay).unref();
          return;
        }
        this.kill(slot, -1, `the worker exited (code ${code})`);
      });
    });
  }
}
