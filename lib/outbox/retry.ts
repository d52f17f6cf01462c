import type { Backoff } from "../config.ts";

export type RetryPolicy = { max_attempts: number; backoff: Backoff; base_ms: number; jitter_pct: number };

/** Delay before attempt n+1 after n failed attempts (n ≥ 1), ± jitter. */
export function retryDelayMs(policy: Omit<RetryPolicy, "max_attempts">, failedAttempts: number, random = Math.random): number {
  const n = Math.max(1, failedAttempts);
  const base = policy.backoff === "exponential" ? policy.base_ms * 2 ** (n - 1) : policy.backoff === "linear" ? policy.base_ms * n : policy.base_ms;
  const jitter = base * (policy.jitter_pct / 100) * (2 * random() - 1);
  return Math.max(0, Math.round(base + jitter));
}
