// Prometheus metrics: every metric of every process is defined here, so the places where events
// happen only call `metrics.x.inc()`. Each process serves its own registry (see http.ts): the
// gateway on its HTTP port, dispatchers and the sweeper on PICLOUD_METRICS_PORT (+ instance).
//
// Counts of things that happen inside a database transaction (dead letters written, handler
// failures, trigger rows dropped past the maximum depth) are staged under the execution whose
// completion makes them and counted only once that completion commits (`completed`,
// `recovered`, `committed`); a rolled-back completion forgets them (`rolledBack`).
import client from "prom-client";
import { z } from "zod";
import { sql, type Db } from "../db/pool.ts";
import type { ExecutionOutcome } from "../executor/index.ts";
import type { Finished } from "../outbox/complete.ts";
import { willRetry } from "../outbox/complete.ts";

export const registry = new client.Registry();
const registers = [registry];

/** Execution times: from a few ms (warm sandbox) to the longest script timeouts. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const executions = new client.Counter({
  name: "picloud_executions_total",
  help: "Executions this process ran to an end and committed, by kind (http_sync, http_async, kv, dead_letter, replay, direct) and outcome (succeeded or the error code)",
  labelNames: ["kind", "outcome"] as const,
  registers,
});
export const executionDuration = new client.Histogram({
  name: "picloud_execution_duration_seconds",
  help: "Time a script ran in the sandbox, by kind",
  labelNames: ["kind"] as const,
  buckets: SECONDS,
  registers,
});
export const syncRequestDuration = new client.Histogram({
  name: "picloud_sync_request_duration_seconds",
  help: "Gateway: a sync route's request from its arrival to its answer (outbox write, claim, run, reply), by outcome",
  labelNames: ["outcome"] as const,
  buckets: SECONDS,
  registers,
});
export const retries = new client.Counter({
  name: "picloud_execution_retries_total",
  help: "Failed attempts sent back to the outbox to run again after a backoff, by kind",
  labelNames: ["kind"] as const,
  registers,
});
export const deadLettersWritten = new client.Counter({
  name: "picloud_dead_letters_written_total",
  help: "Dead letters written (committed) by this process, by the kind of the execution that ran out of attempts",
  labelNames: ["kind"] as const,
  registers,
});
export const deadLetterHandlerFailures = new client.Counter({
  name: "picloud_dead_letter_handler_failures_total",
  help: "Dead-letter handlers that ran out of attempts (the dead letter they handled is marked handler_failed)",
  registers,
});
export const triggerDepthExceeded = new client.Counter({
  name: "picloud_trigger_depth_exceeded_total",
  help: "Trigger rows dropped (committed) because they were past PICLOUD_MAX_TRIGGER_DEPTH",
  registers,
});
export const abandonedExecutions = new client.Counter({
  name: "picloud_abandoned_executions_total",
  help: "Gateway: sync callers that stopped waiting, by reason (timeout, disconnected, closing) and what became of the row (deleted: never runs; marked: its result will be kept as an abandoned execution; gone: it had just completed, its result kept; unknown: the database was away)",
  labelNames: ["reason", "row"] as const,
  registers,
});
export const staleClaimsRecovered = new client.Counter({
  name: "picloud_stale_claims_recovered_total",
  help: "Sweeper: claims taken back from dispatchers that died or stopped heartbeating (counted as a failed attempt)",
  registers,
});
export const listenerReconnects = new client.Counter({
  name: "picloud_listener_reconnects_total",
  help: "Times this process's LISTEN connection came back after it was lost",
  registers,
});

// ---- gauges read when scraped (registered only by the process that has the source) ----

/** Registers metrics once (a test process may wire several gateways). */
const registered = new Set<client.Metric>();
function register(...ms: client.Metric[]): void {
  for (const m of ms) if (!registered.has(m)) registered.add(m), registry.registerMetric(m);
}

/** The backlog and its oldest row's wait, served by the partial index outbox_ready (run_at, id) WHERE claimed_by IS NULL. */
export const OUTBOX_READY = sql.fragment`
  SELECT count(*)::int AS n, coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8 AS age
  FROM outbox WHERE claimed_by IS NULL AND run_at <= now()`;

let outboxDb: Db | undefined;
const OUTBOX_READ_TIMEOUT_MS = 2000;
let outboxRead: { at: number; value: Promise<{ n: number; age: number } | null> } | undefined;
/** Both gauges from one statement per scrape (the registry collects metrics concurrently). */
function readOutbox(): Promise<{ n: number; age: number } | null> {
  if (!outboxDb) return Promise.resolve(null);
  if (!outboxRead || Date.now() - outboxRead.at > 250) {
    // A database that does not answer must not hold the scrape (Prometheus would mark the process down).
    const value = Promise.race([
      outboxDb.one(sql.type(z.object({ n: z.number(), age: z.number() }))`${OUTBOX_READY}`).catch(() => null),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), OUTBOX_READ_TIMEOUT_MS).unref()),
    ]);
    outboxRead = { at: Date.now(), value };
  }
  return outboxRead.value;
}
// The database away: no value (NaN) rather than a stale one; the scrape itself still answers.
const readyRows = new client.Gauge({
  name: "picloud_outbox_ready_rows",
  help: "Outbox rows ready to run and not claimed (the backlog)",
  registers: [],
  async collect() {
    this.set((await readOutbox())?.n ?? NaN);
  },
});
const oldestReady = new client.Gauge({
  name: "picloud_outbox_oldest_ready_age_seconds",
  help: "How long the oldest ready, unclaimed outbox row has been waiting since it became ready (0: none)",
  registers: [],
  async collect() {
    this.set((await readOutbox())?.age ?? NaN);
  },
});

/** The outbox gauges, read from `db` on each scrape (the gateway serves them). */
export function watchOutbox(db: Db): void {
  outboxDb = db;
  register(readyRows, oldestReady);
}

let dispatcherState: (() => { inFlight: number; concurrency: number }) | undefined;
const inFlight = new client.Gauge({
  name: "picloud_dispatcher_in_flight",
  help: "Executions this dispatcher holds (running or waiting for their completion to commit)",
  registers: [],
  collect() {
    if (dispatcherState) this.set(dispatcherState().inFlight);
  },
});
const freeSlots = new client.Gauge({
  name: "picloud_dispatcher_free_slots",
  help: "Executions this dispatcher could still claim (PICLOUD_DISPATCHER_CONCURRENCY minus in flight)",
  registers: [],
  collect() {
    if (!dispatcherState) return;
    const s = dispatcherState();
    this.set(Math.max(0, s.concurrency - s.inFlight));
  },
});

/** The dispatcher gauges, read from `state` on each scrape. */
export function watchDispatcher(state: () => { inFlight: number; concurrency: number }): void {
  dispatcherState = state;
  register(inFlight, freeSlots);
}

let defaultsOn = false;
/** Node's process metrics (CPU, memory, event loop lag, GC) and a `service` label on every series. */
export function collectProcessMetrics(service: string): void {
  registry.setDefaultLabels({ service });
  if (defaultsOn) return;
  defaultsOn = true;
  client.collectDefaultMetrics({ register: registry });
}

// ---- counts that wait for their transaction to commit ----

const staged = new Map<string, (() => void)[]>();

/**
 * Counts `count` once the completion of `executionId` commits. Without an execution (an admin
 * API write, which commits on its own) it counts at once.
 */
export function countAfterCommit(executionId: string | null | undefined, count: () => void): void {
  if (!executionId) return count();
  const list = staged.get(executionId);
  if (list) list.push(count);
  else staged.set(executionId, [count]);
}

/** The completions of these executions committed: count what they staged. */
export function committed(executionIds: Iterable<string>): void {
  for (const id of executionIds) {
    const list = staged.get(id);
    if (!list) continue;
    staged.delete(id);
    for (const count of list) count();
  }
}

/** These completions rolled back: what they staged did not happen. */
export function rolledBack(executionIds: Iterable<string>): void {
  for (const id of executionIds) staged.delete(id);
}

/**
 * Runs a transaction that completes these executions: what they stage is counted if it commits
 * and forgotten if it fails. `ids` is read afterwards (a sweeper pass learns them inside).
 */
export async function settling<T>(ids: () => Iterable<string>, transaction: () => Promise<T>): Promise<T> {
  try {
    const result = await transaction();
    committed(ids());
    return result;
  } catch (err) {
    rolledBack(ids());
    throw err;
  }
}

/** An execution that ran to an end, once its record committed. */
export function countExecution(kind: string, outcome: ExecutionOutcome): void {
  executions.inc({ kind, outcome: outcome.ok ? "succeeded" : outcome.error.code });
  executionDuration.observe({ kind }, outcome.durationMs / 1000);
}

/** A dispatcher's completions committed: executions, durations, retries, and what they staged. */
export function completed(items: readonly Finished[]): void {
  for (const f of items) {
    countExecution(f.row.kind, f.outcome);
    if (willRetry(f)) retries.inc({ kind: f.row.kind });
  }
  committed(items.map((f) => f.row.id));
}

/** The sweeper's recovery of stale claims committed (each a failed attempt: retried, or a dead letter). */
export function recovered(items: readonly Finished[]): void {
  staleClaimsRecovered.inc(items.length);
  for (const f of items) if (willRetry(f)) retries.inc({ kind: f.row.kind });
}

/** For tests: how many completions have counts waiting. */
export const stagedCount = () => staged.size;
