// Messages between the executor (main thread) and its worker threads, and the shared memory
// through which a worker tells which run is on its thread right now.
import type { ExecutionJob, ExecutionOutcome } from "./types.ts";

export type WorkerInit = {
  preludes: { name: string; source: string }[];
  /** The QuickJS WebAssembly, compiled once by the main thread. */
  wasm: WebAssembly.Module;
  /** Float64Array over it: see SLICE_*. */
  slice: SharedArrayBuffer;
  warmLimit: number;
  graceMs: number;
};

export type HostReply =
  | { ok: true; value: string | undefined }
  | { ok: false; name: string; message: string; fatal: boolean };

export type ToWorker =
  | { t: "run"; id: number; job: ExecutionJob }
  | ({ t: "reply"; callId: number } & HostReply)
  /** The main thread gave up on this run (its deadline passed while the worker was busy). */
  | { t: "cancel"; id: number };

export type FromWorker =
  | { t: "ready" }
  | { t: "started"; id: number }
  | { t: "call"; id: number; callId: number; name: string; args: string }
  | { t: "done"; id: number; outcome: ExecutionOutcome };

/**
 * While the worker runs QuickJS code for a run (a "slice": from one await to the next), it
 * writes the slice's hard deadline (epoch ms) and the run's id here, and 0 when it leaves. The
 * main thread reads them to tell a runaway (terminate the worker) from a run that is only
 * waiting behind another one (give up on it, leave the worker alone).
 */
export const SLICE_DEADLINE = 0;
export const SLICE_RUN = 1;
export const SLICE_WORDS = 2;

/** Native stack of a worker thread: QuickJS's own limit (sandbox.ts STACK_BYTES) × 64. */
export const WORKER_STACK_MB = 16;
