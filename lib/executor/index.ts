// The executor: runs scripts in QuickJS inside worker threads. Some single QuickJS operations
// never check the interrupt handler ('x'.repeat(2**29), huge sorts), so the main thread keeps
// a hard deadline per execution and terminates a worker that overruns it.
import { Worker } from "node:worker_threads";
import { getQuickJS, type QuickJSWASMModule } from "quickjs-emscripten";
import type { Logger } from "../log.ts";
import { SdkError, type ExecutionJob, type ExecutionOutcome, type FromWorker, type HostModule, type ToWorker } from "./types.ts";

export * from "./types.ts";

/** How long past its timeout an execution may run before its worker is terminated. */
const HARD_STOP_GRACE_MS = 500;

type InFlight = {
  job: ExecutionJob;
  call: unknown;
  resolve: (o: ExecutionOutcome) => void;
  retried: boolean;
  hardStop?: NodeJS.Timeout;
  started: number;
};

class WorkerSlot {
  worker!: Worker;
  running = new Map<number, InFlight>();
  ready!: Promise<void>;
}

export class Executor<C = unknown> {
  private slots: WorkerSlot[] = [];
  private nextId = 0;
  private closed = false;
  private handlers = new Map<string, (call: C, args: unknown[]) => Promise<unknown>>();

  private constructor(
    private readonly preludes: string[],
    private readonly log: Logger | undefined,
  ) {}

  static async create<C>(opts: { modules?: HostModule<C>[]; workers?: number; logger?: Logger } = {}): Promise<Executor<C>> {
    const modules = opts.modules ?? [];
    const ex = new Executor<C>(modules.map((m) => m.prelude), opts.logger);
    for (const m of modules) for (const [name, h] of Object.entries(m.handlers)) ex.handlers.set(name, h);
    for (let i = 0; i < Math.max(1, opts.workers ?? 1); i++) ex.slots.push(ex.spawn());
    await Promise.all(ex.slots.map((s) => s.ready));
    return ex;
  }

  private spawn(): WorkerSlot {
    const slot = new WorkerSlot();
    slot.worker = new Worker(new URL("./worker-entry.mjs", import.meta.url), {
      workerData: { preludes: this.preludes },
      resourceLimits: { stackSizeMb: 4 },
    });
    slot.ready = new Promise((resolve, reject) => {
      slot.worker.once("error", reject);
      slot.worker.on("message", (m: FromWorker) => {
        if (m.t === "ready") resolve();
        else this.onMessage(slot, m);
      });
    });
    slot.worker.on("error", (err) => this.log?.error({ err }, "executor worker failed"));
    slot.worker.on("exit", () => this.onWorkerExit(slot));
    return slot;
  }

  /** Runs one execution; never rejects for faults of the script. */
  run(job: ExecutionJob, call: C): Promise<ExecutionOutcome> {
    if (this.closed) return Promise.resolve({ ok: false, error: { code: "internal", message: "executor closed" }, logs: [], durationMs: 0 });
    return new Promise((resolve) => this.dispatch({ job, call, resolve, retried: false, started: performance.now() }));
  }

  private dispatch(f: InFlight): void {
    // The least busy worker takes it.
    let slot = this.slots[0]!;
    for (const s of this.slots) if (s.running.size < slot.running.size) slot = s;
    const id = this.nextId++;
    slot.running.set(id, f);
    slot.worker.postMessage({ t: "run", id, job: f.job } satisfies ToWorker);
  }

  private onMessage(slot: WorkerSlot, m: FromWorker): void {
    const f = slot.running.get((m as { id: number }).id);
    if (!f) return;
    if (m.t === "started") {
      // The deadline counts from when the worker starts the execution, not from when it was queued.
      f.hardStop = setTimeout(() => this.hardStop(slot, m.id), f.job.script.timeoutMs + HARD_STOP_GRACE_MS);
    } else if (m.t === "done") {
      clearTimeout(f.hardStop);
      slot.running.delete(m.id);
      f.resolve(m.outcome);
    } else if (m.t === "call") {
      void this.hostCall(slot, m, f);
    }
  }

  private async hostCall(slot: WorkerSlot, m: Extract<FromWorker, { t: "call" }>, f: InFlight): Promise<void> {
    let reply: ToWorker;
    const handler = this.handlers.get(m.name);
    try {
      if (!handler) throw new SdkError(`unknown host function ${m.name}`);
      const args = JSON.parse(m.args) as unknown;
      if (!Array.isArray(args)) throw new SdkError("host call arguments must be an array");
      const value = await handler(f.call as C, args);
      reply = { t: "reply", id: m.id, callId: m.callId, ok: true, value: value === undefined ? undefined : JSON.stringify(value) };
    } catch (err) {
      const exposed = err instanceof Error && (err as { expose?: unknown }).expose === true;
      if (!exposed) this.log?.error({ err, host_call: m.name, execution_id: f.job.executionId }, "host call failed");
      reply = { t: "reply", id: m.id, callId: m.callId, ok: false, message: exposed ? (err as Error).message : "internal error in a platform call", fatal: !exposed };
    }
    if (slot.running.get(m.id) === f) slot.worker.postMessage(reply);
  }

  /** An execution overran its deadline inside an operation that ignores interrupts. */
  private hardStop(slot: WorkerSlot, id: number): void {
    const f = slot.running.get(id);
    if (!f) return;
    slot.running.delete(id);
    this.log?.warn({ execution_id: f.job.executionId, script_id: f.job.script.id }, "execution overran its deadline: terminating its worker");
    f.resolve({
      ok: false,
      error: { code: "timeout", message: `the script ran past its timeout of ${f.job.script.timeoutMs} ms` },
      logs: [],
      durationMs: Math.round(performance.now() - f.started),
    });
    void slot.worker.terminate();
  }

  /**
   * Innocent executions on a terminated worker run again once on a fresh one: their host-side
   * effects are only committed when an execution completes, so a second run is safe.
   */
  private onWorkerExit(slot: WorkerSlot): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    const orphans = [...slot.running.values()];
    slot.running.clear();
    if (this.closed) {
      for (const f of orphans) f.resolve({ ok: false, error: { code: "internal", message: "executor closed" }, logs: [], durationMs: 0 });
      return;
    }
    const fresh = this.spawn();
    this.slots[idx] = fresh;
    for (const f of orphans) {
      clearTimeout(f.hardStop);
      if (!f.retried) {
        f.retried = true;
        void fresh.ready.then(() => this.dispatch(f));
      } else {
        f.resolve({ ok: false, error: { code: "internal", message: "the sandbox was stopped by another script's runaway" }, logs: [], durationMs: Math.round(performance.now() - f.started) });
      }
    }
  }

  get inFlight(): number {
    return this.slots.reduce((n, s) => n + s.running.size, 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

// Compile-only checks for the admin API run on the main thread on one QuickJS instance.
let checker: QuickJSWASMModule | undefined;
export async function loadSourceChecker(): Promise<void> {
  checker ??= await getQuickJS();
}

/** Whether `source` compiles as an ES module; the compiler's message when not. */
export function checkSource(source: string): { ok: true } | { ok: false; message: string } {
  if (!checker) throw new Error("call loadSourceChecker() once before checkSource()");
  const rt = checker.newRuntime();
  rt.setMemoryLimit(64 * 1024 * 1024);
  rt.setMaxStackSize(256 * 1024);
  const deadline = Date.now() + 2000;
  rt.setInterruptHandler(() => Date.now() > deadline);
  const vm = rt.newContext();
  try {
    const r = vm.evalCode(source, "script.js", { type: "module", compileOnly: true });
    if (r.error) {
      // quickjs-emscripten 0.32 sometimes reports a successfully compiled module as an error
      // whose value is not an object (seen for `export default () => ({ status: 42 })`). A real
      // compile error is always an Error object, so anything else compiled.
      if (vm.typeof(r.error) !== "object") {
        r.error.dispose();
        return { ok: true };
      }
      const e = r.error.consume((h) => vm.dump(h)) as { name?: string; message?: string; lineNumber?: number; stack?: string };
      const where = /script\.js:(\d+):(\d+)/.exec(e?.stack ?? "");
      if (typeof e !== "object" || e === null || typeof e.message !== "string") return { ok: false, message: `does not compile: ${JSON.stringify(e)}` };
      return { ok: false, message: `${e.name ?? "SyntaxError"}: ${e.message}${where ? ` (line ${where[1]}, column ${where[2]})` : ""}` };
    }
    r.value.dispose();
    return { ok: true };
  } finally {
    vm.dispose();
    rt.dispose();
  }
}
