// The executor's public surface: what a job is, what an execution answers, how an SDK module
// plugs in. Everything else in lib/executor is private to it.
import type { Logger } from "../log.ts";

export type LogLevel = "log" | "info" | "warn" | "error" | "debug";
export type LogLine = { level: LogLevel; message: string; at: string };

/**
 * What a script answered. `body` is already serialized and `content-type` set: an object,
 * array, number, boolean or null body is JSON (`application/json`), a string body is
 * `text/plain; charset=utf-8` unless the script set a content-type; 204 and 304 have body "".
 * Header names are lower-case.
 */
export type ScriptResponse = { status: number; headers: Record<string, string>; body: string };

export type ExecErrorCode = "invalid_script" | "script_error" | "timeout" | "memory_limit" | "internal";
export type ExecError = { code: ExecErrorCode; message: string; stack?: string };

export type ExecutionOutcome =
  | { ok: true; response: ScriptResponse; logs: LogLine[]; durationMs: number }
  | { ok: false; error: ExecError; logs: LogLine[]; durationMs: number };

export type ScriptRequest = {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: unknown;
  params: Record<string, string>;
};

export interface ExecutionJob {
  executionId: string;
  /** `(id, version)` names the source and limits: executors reuse what they prepared for it. */
  script: { id: string; name: string; source: string; version: number; timeoutMs: number; memoryMb: number };
  app: { id: string; slug: string };
  /** `ctx.request`; `null` in the sandbox when absent (triggered executions). */
  request?: ScriptRequest;
  /** Becomes ctx.event only when present (triggered executions). */
  event?: unknown;
  triggerDepth: number;
}

/**
 * An SDK module (kv, dead_letters, …) plugs in as one file: `prelude` is JS evaluated in every
 * sandbox before the script, building globals from the one primitive `__host(name, args)`
 * (it returns a Promise of the JSON result); `handlers` are the host side, keyed by the full
 * name ("kv.get"), run on the main thread with the execution's `call`. Arguments and results
 * are JSON. A handler that throws an error with `expose = true` (e.g. {@link SdkError})
 * rejects the script's promise with that message; any other exception ends the execution
 * with code "internal" (and is logged).
 */
export interface HostModule<C = unknown> {
  name: string;
  prelude: string;
  handlers: Record<string, (call: C, args: unknown[]) => Promise<unknown>>;
}

/** An error whose message the script may see (its `__host` promise rejects with it). */
export class SdkError extends Error {
  readonly expose = true;
  constructor(message: string) {
    super(message);
    this.name = "SdkError";
  }
}

export interface ExecutorOptions<C = unknown> {
  modules?: HostModule<C>[];
  /** Worker threads running sandboxes (default 1). */
  workers?: number;
  /** Executions one worker interleaves at host-call awaits (default 8); more wait in a queue. */
  maxConcurrentPerWorker?: number;
  logger?: Logger;
  /**
   * Prepared sandboxes (script module evaluated, ready to call) each worker keeps per
   * (script id, version) for the next execution (default 16; 0 = a fresh sandbox every time).
   * Each holds a module instance (its touched heap, and ~10 GiB of reserved address space).
   */
  warmSandboxesPerWorker?: number;
  /**
   * Keep one booted worker aside to replace a terminated one at once (default true; costs one
   * idle worker, ~30 MB). Without it, executions wait for a new worker to boot (~0.4 s here).
   */
  standbyWorker?: boolean;
  /** How long past its timeout a run that ignores the interrupt may go before its worker is terminated (default 500). */
  hardStopGraceMs?: number;
}
