// A sync route's request (SPEC section 4): lease a reply channel of its own, then write
// its outbox row, then wait (script timeout + 2 s) for the reply and answer per the SPEC table.
//
// Never twice: a sync row runs at most once (single attempt; a crashed dispatcher's claim is
// failed by the sweeper, not re-run). When the caller stops waiting (timeout, disconnect, the
// gateway stopping), the row is deleted if no dispatcher took it yet (then it never runs), else
// marked abandoned, and its result is kept as an abandoned execution when it completes.
import type { Context } from "hono";
import type { ExecErrorCode } from "../../lib/executor/index.ts";
import * as metrics from "../../lib/metrics/index.ts";
import { abandonSync, availability, keepAbandoned, type NewOutboxRow } from "../../lib/outbox/index.ts";
import type { RouteTarget } from "../../lib/routes/index.ts";
import type { GatewayDeps } from "./deps.ts";
import type { Reply, Waiting } from "./replies.ts";
import { note } from "./request-log.ts";

/** How much longer than the script's timeout a sync caller waits (SPEC: timeout + 2 s). */
export const REPLY_GRACE_MS = 2000;
/** Past the reply wait, how long giving up (abandoning the row) may take before the caller is answered anyway. */
const HARD_BOUND_EXTRA_MS = 1000;
/** The 503 decision reads a snapshot of dispatcher liveness and backlog at most this old. */
const CAPACITY_MAX_AGE_MS = 500;

const ERROR_STATUS: Record<ExecErrorCode, 422 | 502 | 504 | 507 | 500> = { invalid_script: 422, script_error: 502, timeout: 504, memory_limit: 507, internal: 500 };
/** These answer without the script's message (SPEC section 4). */
const WITHOUT_MESSAGE = new Set<ExecErrorCode>(["timeout", "memory_limit", "internal"]);

type Outcome = Reply | "timeout" | "disconnected" | "closing";

export function syncRunner(deps: GatewayDeps): (c: Context, route: RouteTarget, row: NewOutboxRow) => Promise<Response> {
  const { db, log, config } = deps;
  const staleMs = config.heartbeatMs * 3;

  let snapshot: { at: number; value: Promise<{ alive: number; backlog: number }> } | undefined;
  const capacity = () => {
    if (!snapshot || Date.now() - snapshot.at > CAPACITY_MAX_AGE_MS) {
      const value = availability(db, staleMs);
      const taken = { at: Date.now(), value };
      value.catch(() => snapshot === taken && (snapshot = undefined));
      snapshot = taken;
    }
    return snapshot.value;
  };

  const unavailable = (c: Context, message: string) => {
    c.header("Retry-After", "1");
    note(c, { outcome: "unavailable" });
    return c.json({ error: "unavailable", message }, 503);
  };

  const answer = (c: Context, id: string, r: Reply): Response => {
    note(c, { outcome: r.ok ? "succeeded" : r.error.code });
    if (r.ok) return new Response(r.response.body === "" ? null : r.response.body, { status: r.response.status, headers: r.response.headers });
    const { code, message } = r.error;
    return c.json(WITHOUT_MESSAGE.has(code) ? { error: code, execution_id: id } : { error: code, message, execution_id: id }, ERROR_STATUS[code] ?? 500);
  };

  /** The caller stopped waiting: make sure the row never runs, or that its result is kept. */
  const stopWaiting = async (c: Context, id: string, row: NewOutboxRow, why: "timeout" | "disconnected" | "closing"): Promise<Response> => {
    let state: "deleted" | "marked" | "gone" | "unknown";
    try {
      state = await abandonSync(db, id);
      if (state === "gone") {
        // It completed while we were giving up: the caller still here gets the result.
        const r = await deps.replies.result(id);
        if (r && why === "timeout") return answer(c, id, r);
        if (r) await keepAbandoned(db, id, row.payload.request);
      }
    } catch (err) {
      // The database is away: if the row committed, it runs once and its result is recorded.
      state = "unknown";
      log.warn({ execution_id: id, err: String(err) }, "could not abandon a sync execution");
    }
    log.warn({ execution_id: id, reason: why, row: state }, "sync caller stopped waiting");
    metrics.abandonedExecutions.inc({ reason: why, row: state });
    note(c, { outcome: why });
    if (why === "closing" && state === "deleted") return unavailable(c, "the gateway is stopping");
    return c.json({ error: "timeout", execution_id: id }, 504);
  };

  /**
   * A hard bound over everything, the database included: a Postgres that stops answering (not
   * refusing: frozen, or a network that drops packets) must not hold a caller past its timeout.
   * The inner run carries on and cleans up (abandons its row) whenever the database answers.
   */
  return async function runSync(c, route, row) {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<Response>((resolve) => {
      timer = setTimeout(() => {
        log.warn({ execution_id: row.id }, "sync request past its hard bound (the database does not answer)");
        note(c, { outcome: "timeout" });
        resolve(c.json({ error: "timeout", execution_id: row.id }, 504));
      }, route.timeout_ms + REPLY_GRACE_MS + HARD_BOUND_EXTRA_MS);
    });
    try {
      return await Promise.race([run(c, route, row), bound]);
    } finally {
      clearTimeout(timer);
    }
  };

  async function run(c: Context, route: RouteTarget, row: NewOutboxRow): Promise<Response> {
    const cap = await capacity().catch(() => null);
    if (!cap) return unavailable(c, "the database is unreachable");
    if (cap.alive === 0) return unavailable(c, "no dispatcher is running");
    if (cap.backlog >= config.maxBacklog) return unavailable(c, "the backlog is over its limit");

    const id = row.id;
    let waiting: Waiting;
    try {
      // A channel LISTENed to before the row commits: the reply cannot come before we hear it.
      waiting = await deps.replies.expect(id);
    } catch (err) {
      log.warn({ err: String(err) }, "cannot listen for a sync reply");
      return unavailable(c, "the database is unreachable");
    }
    row.replyTo = waiting.channel;
    let timer: NodeJS.Timeout | undefined;
    const started = performance.now();
    try {
      try {
        await deps.enqueue(row);
      } catch (err) {
        log.warn({ execution_id: id, err: String(err) }, "could not enqueue a sync execution");
        // The commit may have happened with its answer lost: then it must not run unheard.
        await abandonSync(db, id).catch(() => undefined);
        return unavailable(c, "the database is unreachable");
      }
      const signal = c.req.raw.signal;
      const outcome = await Promise.race<Outcome>([
        waiting.reply,
        new Promise((r) => (timer = setTimeout(() => r("timeout"), route.timeout_ms + REPLY_GRACE_MS))),
        new Promise((r) => (signal.aborted ? r("disconnected") : signal.addEventListener("abort", () => r("disconnected"), { once: true }))),
      ]);
      if (typeof outcome === "string") return await stopWaiting(c, id, row, outcome);
      log.debug({ execution_id: id, app: route.app_slug, script: route.script_name, outcome: outcome.ok ? outcome.response.status : outcome.error.code, ms: Math.round(performance.now() - started) }, "sync request");
      return answer(c, id, outcome);
    } finally {
      clearTimeout(timer);
      waiting.done();
    }
  }
}
