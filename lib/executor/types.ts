// Types of the executor's public surface (lib/executor/index.ts) and its worker protocol.

export type LogLevel = "log" | "info" | "warn" | "error" | "debug";
export type LogLine = { level: LogLevel; message: string; at: string };

/** What a script answered: body serialized, content-type set. */
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
  script: { id: string; name: string; source: string; version: number; timeoutMs: number; memoryMb: number };
  app: { id: string; slug: string };
  request?: ScriptRequest;
  /** Becomes ctx.event only when present (triggered executions). */
  event?: unknown;
  triggerDepth: number;
}

/**
 * An SDK module (kv, dead_letters, …) plugs in as one file: JS run in every sandbox before the
 * script, building globals from the one primitive `__host(name, args)` (a Promise of the JSON
 * result), and the host-side async handlers it calls, run on the main thread with the
 * execution's context `call`.
 */
export interface HostModule<C = unknown> {
  name: string;
  prelude: string;
  handlers: Record<string, (call: C, args: unknown[]) => Promise<unknown>>;
}

/** An error whose message the script may see (its promise rejects with it). */
export class SdkError extends Error {
  readonly expose = true;
  constructor(message: string) {
    super(message);
    this.name = "SdkError";
  }
}

// Worker protocol: main → worker
export type ToWorker =
  | { t: "run"; id: number; job: ExecutionJob }
  | { t: "reply"; id: number; callId: number; ok: true; value: string | undefined }
  | { t: "reply"; id: number; callId: number; ok: false; message: string; fatal: boolean };
// worker → main
export type FromWorker =
  | { t: "call"; id: number; callId: number; name: string; args: string }
  | { t: "started"; id: number }
  | { t: "done"; id: number; outcome: ExecutionOutcome }
  | { t: "ready" };
