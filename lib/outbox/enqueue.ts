import { isDataError } from "../db/errors.ts";
import { hotRows, sql, type Db } from "../db/pool.ts";
import { jsonbText } from "./jsonb.ts";
import type { RetryPolicy } from "./retry.ts";

/** Dispatchers LISTEN here; the payload is empty (NOTIFY payloads are capped, and never carry work). */
export const OUTBOX_CHANNEL = "picloud_outbox";

export type OutboxKind = "http_sync" | "http_async" | "kv" | "dead_letter" | "replay";

export type NewOutboxRow = {
  id: string;
  kind: OutboxKind;
  appId: string;
  scriptId: string;
  routeId?: string | null;
  triggerId?: string | null;
  payload: { request?: unknown; event?: unknown };
  replyTo?: string | null;
  retry?: RetryPolicy | null;
  triggerDepth?: number;
  rootExecutionId?: string | null;
};

/** The rows as one JSON array (read by jsonb_to_recordset): one statement text for any number of rows. */
const rowsJson = (rows: NewOutboxRow[]) =>
  jsonbText(
    JSON.stringify(
      rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        app_id: r.appId,
        script_id: r.scriptId,
        route_id: r.routeId ?? null,
        trigger_id: r.triggerId ?? null,
        payload: r.payload,
        reply_to: r.replyTo ?? null,
        max_attempts: r.retry?.max_attempts ?? 1,
        retry: r.retry ? { backoff: r.retry.backoff, base_ms: r.retry.base_ms, jitter_pct: r.retry.jitter_pct } : null,
        trigger_depth: r.triggerDepth ?? 0,
        root_execution_id: r.rootExecutionId ?? null,
      })),
    ),
  );

/**
 * Inserts ready rows and wakes the dispatchers, in one statement: the NOTIFY is sent when (and
 * only if) the surrounding transaction commits. Returns the commit-side time of the insert.
 * Its text does not depend on the rows (they travel as one jsonb array), so outside a
 * transaction it runs prepared (hotRows) whatever the batch.
 */
export async function enqueue(db: Pick<Db, "any" | "prepared">, rows: NewOutboxRow[]): Promise<string> {
  return insertAndWake(db, rows, "on");
}

/**
 * `commit`: the statement's own synchronous_commit (only outside a transaction). "off" is for
 * sync-route rows alone, which need not survive a Postgres crash: their caller has no answer
 * yet (it gets a 5xx), and a row any dispatcher acted on is durable, as the claim's synchronous
 * commit flushes the WAL written before it. What it buys: a NOTIFY holds a database-wide lock
 * until its transaction has committed, so every notifying commit that waits for its WAL flush
 * makes all the others wait too (the spine's first bottleneck under load).
 */
async function insertAndWake(db: Pick<Db, "any" | "prepared">, rows: NewOutboxRow[], commit: "on" | "off"): Promise<string> {
  const [r] = await hotRows<{ accepted_at: string }>(db, sql.unsafe`
    WITH commit AS (SELECT set_config('synchronous_commit', ${commit}, true)),
    ins AS (
      INSERT INTO outbox (id, kind, app_id, script_id, route_id, trigger_id, payload, reply_to, max_attempts, retry, trigger_depth, root_execution_id)
      SELECT r.id, r.kind, r.app_id, r.script_id, r.route_id, r.trigger_id, r.payload, r.reply_to, r.max_attempts, r.retry, r.trigger_depth, r.root_execution_id
      FROM jsonb_to_recordset(${rowsJson(rows)}::jsonb) AS r(id uuid, kind text, app_id uuid, script_id uuid, route_id uuid, trigger_id uuid,
        payload jsonb, reply_to text, max_attempts int, retry jsonb, trigger_depth int, root_execution_id uuid)
      RETURNING created_at)
    SELECT (SELECT max(created_at) FROM ins) AS accepted_at
    FROM (SELECT pg_notify(${OUTBOX_CHANNEL}, '')) AS wake, commit`);
  return r!.accepted_at;
}

/**
 * The gateway's enqueue: rows from concurrent requests share statements. Up to `inFlight`
 * statements run at once; rows that arrive while all are busy wait and go together in the next
 * one (at most `maxBatch`). A lone request never waits, and under load one INSERT, one commit
 * and one NOTIFY serve many requests: Postgres' notifying commits are serialized (a database-wide
 * lock held through the commit's WAL flush), and every NOTIFY makes each dispatcher claim.
 *
 * A batch the database refuses for its data (isDataError: nothing committed) is tried again row
 * by row, so one bad row fails only its own request.
 */
export function enqueuer(db: Pick<Db, "any" | "prepared">, opts: { inFlight?: number; maxBatch?: number } = {}): (row: NewOutboxRow) => Promise<string> {
  const inFlight = opts.inFlight ?? 2;
  const maxBatch = opts.maxBatch ?? 64;
  type Waiter = { row: NewOutboxRow; resolve: (acceptedAt: string) => void; reject: (err: unknown) => void };
  const queue: Waiter[] = [];
  let running = 0;

  const send = async (batch: Waiter[]): Promise<void> => {
    try {
      const rows = batch.map((w) => w.row);
      const at = await insertAndWake(db, rows, rows.every((r) => r.kind === "http_sync") ? "off" : "on");
      batch.forEach((w) => w.resolve(at));
    } catch (err) {
      if (batch.length > 1 && isDataError(err)) await Promise.all(batch.map((w) => send([w])));
      else batch.forEach((w) => w.reject(err));
    }
  };
  const pump = (): void => {
    while (running < inFlight && queue.length) {
      running++;
      void send(queue.splice(0, maxBatch)).finally(() => {
        running--;
        pump();
      });
    }
  };
  return (row) =>
    new Promise<string>((resolve, reject) => {
      queue.push({ row, resolve, reject });
      pump();
    });
}
