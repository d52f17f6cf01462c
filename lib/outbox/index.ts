// The outbox: every pending execution, one row each (its id is the execution's id), one file
// per queue operation, in the order a row meets them:
//
//   enqueue        INSERT + NOTIFY picloud_outbox (empty payload), sent only if it commits
//   claimBatch     one statement: the oldest ready rows (FOR UPDATE SKIP LOCKED), claimed_by +
//                  lease_until set and the attempt counted, committed before anything runs
//   heartbeat      a live dispatcher's liveness, extending the leases of the claims it holds
//   completeBatch  one statement per batch: final rows leave the outbox and are recorded, sync
//                  callers get pg_notify(reply_to, …) (inline, or "stored" past ~7.9 kB and read
//                  from executions), abandoned ones are kept; failed ones with attempts left go
//                  back with a backoff (retry.ts). Fenced by (claimed_by, attempts): a claim
//                  taken back by the sweeper is no longer ours. Exhausted rows go to one seam
//                  (ExhaustedHandler: dead letters)
//   releaseClaims  a stopping dispatcher hands back what it did not finish (attempt not counted)
//   lockStaleClaims  the sweeper: leases run out or dispatchers silent for 3 heartbeats; such a
//                  claim counts as a failed attempt (so a row that kills its dispatcher ends)
//   abandonSync    the sync caller left: an unclaimed row is deleted, a claimed one marked
//   vacuumOutbox   the sweeper, every 2 s once dead row versions pile up (faster than autovacuum)
//
// Sync rows (http_sync) have one attempt and are never run again once claimed: a dead
// dispatcher's sync claim is failed (a caller still waiting gets a 500), so a sync request never
// runs twice on its caller's behalf. Everything else is at-least-once.
export * from "./enqueue.ts";
export * from "./claimBatch.ts";
export * from "./complete.ts";
export * from "./release.ts";
export * from "./recoverStale.ts";
export * from "./heartbeat.ts";
export * from "./pending.ts";
export * from "./retry.ts";
export * from "./abandon.ts";
export * from "./idempotency.ts";
export * from "./jsonb.ts";
export * from "./vacuum.ts";
