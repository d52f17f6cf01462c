// The outbox, one file per queue operation, in the order a row meets them:
// enqueue → claimBatch → (run) → completeBatch | releaseClaims | lockStaleClaims (sweeper).
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
