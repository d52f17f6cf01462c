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

const values = (r: NewOutboxRow) => sql.fragment`(
  ${r.id}, ${r.kind}, ${r.appId}, ${r.scriptId}, ${r.routeId ?? null}, ${r.triggerId ?? null}, ${jsonbText(JSON.stringify(r.payload))}::jsonb,
  ${r.replyTo ?? null}, ${r.retry?.max_attempts ?? 1}, ${r.retry ? sql.jsonb({ backoff: r.retry.backoff, base_ms: r.retry.base_ms, jitter_pct: r.retry.jitter_pct }) : null},
  ${r.triggerDepth ?? 0}, ${r.rootExecutionId ?? null})`;

/**
 * Inserts ready rows and wakes the dispatchers, in one statement: the NOTIFY is sent when (and
 * only if) the surrounding transaction commits. Returns the commit-side time of the insert.
 * Prepared (hotRows) outside a transaction: the gateway's one-row insert has one text.
 */
export async function enqueue(db: Pick<Db, "any" | "prepared">, rows: NewOutboxRow[]): Promise<string> {
  const [r] = await hotRows<{ accepted_at: string }>(db, sql.unsafe`
    WITH ins AS (
      INSERT INTO outbox (id, kind, app_id, script_id, route_id, trigger_id, payload, reply_to, max_attempts, retry, trigger_depth, root_execution_id)
      VALUES ${sql.join(rows.map(values), sql.fragment`, `)}
      RETURNING created_at)
    SELECT (SELECT max(created_at) FROM ins) AS accepted_at
    FROM (SELECT pg_notify(${OUTBOX_CHANNEL}, '')) AS wake`);
  return r!.accepted_at;
}
