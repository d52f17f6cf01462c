// Retry policy of triggered work: per trigger, an override of any of the four fields; the rest
// come from the PICLOUD_TRIGGER_RETRY_* defaults when a row is enqueued. The delay itself is the
// outbox's retryDelayMs (lib/outbox/retry.ts), applied when an attempt fails.
import { z } from "zod";
import type { Config } from "../config.ts";
import type { RetryPolicy } from "../outbox/retry.ts";

export type RetryDefaults = Pick<Config, "retryMaxAttempts" | "retryBackoff" | "retryBaseMs" | "retryJitterPct">;

const int = (min: number, max: number) =>
  z.number({ invalid_type_error: "must be an integer" }).int("must be an integer").min(min, `must be from ${min} to ${max}`).max(max, `must be from ${min} to ${max}`);

/** The override as a trigger stores it; validated at creation (the API's 400 names the field, e.g. retry.base_ms). */
export const retryOverride = z
  .object({
    max_attempts: int(1, 100).optional(),
    backoff: z.enum(["exponential", "linear", "constant"]).optional(),
    base_ms: int(0, 24 * 60 * 60 * 1000).optional(),
    jitter_pct: int(0, 100).optional(),
  })
  .strict();
export type RetryOverride = z.infer<typeof retryOverride>;

export function defaultPolicy(d: RetryDefaults): RetryPolicy {
  return { max_attempts: d.retryMaxAttempts, backoff: d.retryBackoff, base_ms: d.retryBaseMs, jitter_pct: d.retryJitterPct };
}

/** The policy a row is enqueued with: the trigger's override (as stored) over the defaults. */
export function effectivePolicy(stored: unknown, d: RetryDefaults): RetryPolicy {
  const base = defaultPolicy(d);
  const parsed = stored ? retryOverride.safeParse(stored) : undefined;
  if (!parsed?.success) return base;
  const override = parsed.data;
  return {
    max_attempts: override.max_attempts ?? base.max_attempts,
    backoff: override.backoff ?? base.backoff,
    base_ms: override.base_ms ?? base.base_ms,
    jitter_pct: override.jitter_pct ?? base.jitter_pct,
  };
}
