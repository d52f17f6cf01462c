// The dispatcher's loop: wake (NOTIFY, poll, a delayed row coming due, a full batch done),
// claim as many rows as there are free slots in one statement, run them concurrently, and
// complete finished ones in batches (whatever finished while the previous batch committed).
import { randomUUID } from "node:crypto";
import type { Config } from "../../lib/config.ts";
import { isDataError } from "../../lib/db/errors.ts";
import type { Db } from "../../lib/db/pool.ts";
import type { Executor } from "../../lib/executor/index.ts";
import type { Logger } from "../../lib/log.ts";
import * as metrics from "../../lib/metrics/index.ts";
import { claimBatch, completeBatch, releaseClaims, scriptKey, type ClaimedRow, type ExhaustedHandler, type Finished, type CompletionEffects } from "../../lib/outbox/index.ts";

export type HostCall = { appId: string; executionId: string; triggerDepth: number; rootExecutionId: string };

export class Dispatcher {
  readonly id = `dispatcher-${randomUUID()}`;
  private running = new Map<string, ClaimedRow>();
  private finished: Finished[] = [];
  private flushing: Promise<void> | null = null;
  private pumping = false;
  private again = false;
  private stopping = false;
  private dueTimer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  /**
   * Ready rows may be waiting that no claim has seen: a wake came while every slot was busy, or
   * the last claim filled every free slot. Only then does a completion claim again; otherwise
   * the last claim saw everything ready, and whatever came after it comes with a NOTIFY (each
   * claim is a statement, and both dispatchers wake on every NOTIFY anyway).
   */
  private maybeMore = true;

  constructor(
    private readonly db: Db,
    private readonly executor: Executor<HostCall>,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly onExhausted?: ExhaustedHandler,
    private readonly effects?: CompletionEffects,
  ) {}

  get inFlight(): number {
    return this.running.size;
  }

  /** The claims this dispatcher is working on (running or waiting to complete). */
  held(): string[] {
    return [...this.running.keys()];
  }

  /** Claim and start work while there are free slots and ready rows. Calls coalesce. */
  wake(): void {
    if (this.stopping) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  private async pump(): Promise<void> {
    for (;;) {
      const free = this.config.dispatcherConcurrency - this.running.size;
      if (this.stopping) return;
      if (free <= 0) {
        this.maybeMore = true;
        return;
      }
      this.maybeMore = false;
      let claimed: Awaited<ReturnType<typeof claimBatch>>;
      try {
        claimed = await claimBatch(this.db, this.id, free, this.config.leaseMs, [...this.sources.keys()]);
      } catch (err) {
        this.maybeMore = true;
        this.log.error({ err: String(err) }, "claim failed; the next poll retries");
        return;
      }
      // Look every source up before remembering new ones (which may evict one this batch needs).
      const sources = claimed.rows.map((row) => row.source ?? this.sources.get(scriptKey(row.script_id, row.version)));
      claimed.rows.forEach((row, i) => this.remember(row, sources[i]));
      claimed.rows.forEach((row, i) => this.start(row, sources[i]));
      if (claimed.rows.length < free) {
        this.scheduleNextDue(claimed.nextRunAt);
        return;
      }
    }
  }

  /**
   * Script sources by (id, version), the most recently used last; the claim statement sends a
   * source only for pairs not in here. Bounded: the list travels with every claim.
   */
  private sources = new Map<string, string>();
  private static readonly MAX_SOURCES = 64;

  private remember(row: ClaimedRow, source: string | undefined): void {
    if (source === undefined) return;
    const key = scriptKey(row.script_id, row.version);
    this.sources.delete(key);
    this.sources.set(key, source);
    if (this.sources.size > Dispatcher.MAX_SOURCES) this.sources.delete(this.sources.keys().next().value!);
  }

  /** Rows waiting for a retry delay are not announced: wake when the earliest comes due. */
  private scheduleNextDue(at: number | null): void {
    if (at === null || at >= this.dueAt) return;
    clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueAt = Infinity;
      this.wake();
    }, Math.max(0, at - Date.now()) + 5);
  }

  private start(row: ClaimedRow, source: string | undefined): void {
    this.running.set(row.id, row);
    const startedAt = new Date();
    if (source === undefined) {
      // Cannot happen (the claim sends every source we did not list); a platform fault, never a hang.
      const error = { code: "internal" as const, message: `the dispatcher has no source for script ${row.script_id} version ${row.version}` };
      this.log.error({ execution_id: row.id }, error.message);
      this.finished.push({ row, outcome: { ok: false, error, logs: [], durationMs: 0 }, startedAt });
      this.flush();
      return;
    }
    const job = {
      executionId: row.id,
      script: { id: row.script_id, name: row.script_name, source, version: row.version, timeoutMs: row.timeout_ms, memoryMb: row.memory_mb },
      app: { id: row.app_id, slug: row.app_slug },
      request: row.payload.request,
      ...(row.payload.event !== undefined ? { event: row.payload.event } : {}),
      triggerDepth: row.trigger_depth,
    };
    const call: HostCall = { appId: row.app_id, executionId: row.id, triggerDepth: row.trigger_depth, rootExecutionId: row.root_execution_id ?? row.id };
    void this.executor.run(job, call).then((outcome) => {
      this.finished.push({ row, outcome, startedAt, call });
      this.log.info({ execution_id: row.id, app: row.app_slug, script: row.script_name, kind: row.kind, attempt: row.attempts, outcome: outcome.ok ? "succeeded" : outcome.error.code, duration_ms: outcome.durationMs }, "execution finished");
      this.flush();
    });
  }

  /**
   * One completing transaction at a time; what finishes meanwhile goes in the next. A batch
   * that cannot commit (the database is away) is kept and tried again: the results are in
   * memory and the claims are still ours (the heartbeat keeps their lease while we live).
   */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = (async () => {
      let pause = 100;
      while (this.finished.length) {
        const batch = this.finished.splice(0);
        const again = await this.complete(batch);
        if (again.length) {
          this.finished.unshift(...again);
          await new Promise((r) => setTimeout(r, pause));
          pause = Math.min(pause * 2, 5000);
          continue;
        }
        pause = 100;
      }
    })().finally(() => {
      this.flushing = null;
      if (this.finished.length) this.flush();
    });
  }

  /**
   * Completes a batch; returns what must be tried again (the database is away). A result the
   * database refuses (a data error: one row's, not the connection's) must not wedge every
   * completion behind it: the batch is split, and a row refused on its own completes as an
   * internal failure instead.
   */
  private async complete(batch: Finished[], alone = false): Promise<Finished[]> {
    try {
      await completeBatch(this.db, batch, this.config, this.onExhausted, this.effects);
      metrics.completed(batch);
    } catch (err) {
      metrics.rolledBack(batch.map((f) => f.row.id));
      if (!isDataError(err)) {
        this.log.error({ err: String(err), executions: batch.length }, "completing executions failed; retrying");
        return batch;
      }
      if (batch.length > 1) {
        const again: Finished[] = [];
        for (const f of batch) again.push(...(await this.complete([f])));
        return again;
      }
      const f = batch[0]!;
      this.log.error({ err: String(err), execution_id: f.row.id }, "the database refused an execution's result; recording it as an internal failure");
      if (alone) {
        // Even the failure is refused: let the lease run out; the sweeper records it.
        this.running.delete(f.row.id);
        return [];
      }
      const message = `the result could not be recorded: ${err instanceof Error ? err.message : String(err)}`;
      return this.complete([{ ...f, outcome: { ok: false, error: { code: "internal", message }, logs: [], durationMs: f.outcome.durationMs } }], true);
    }
    for (const f of batch) this.running.delete(f.row.id);
    // A failed row may have gone back with a delay: a claim learns when it comes due.
    if (this.maybeMore || batch.some((f) => !f.outcome.ok)) this.wake();
    return [];
  }

  /** Stop claiming; let running work finish within `timeoutMs`; hand back what did not. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.dueTimer);
    const until = Date.now() + timeoutMs;
    while ((this.running.size > 0 || this.flushing) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    // Past the bound: hand back what has not completed (if the database is away, the sweeper
    // recovers these claims once our heartbeat stops).
    const left = [...this.running.keys()];
    if (left.length) {
      const n = await releaseClaims(this.db, this.id, left).catch((err) => (this.log.error({ err }, "releasing claims failed"), 0));
      this.log.warn({ released: n }, "released unfinished claims");
    }
  }
}
