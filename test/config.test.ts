import test from "ava";
import { ConfigError, loadConfig } from "../lib/config.ts";

test("defaults follow the spec when nothing is set", (t) => {
  const c = loadConfig({});
  t.is(c.port, 8080);
  t.is(c.logLevel, "info");
  t.is(c.maxTriggerDepth, 8);
  t.is(c.retryMaxAttempts, 3);
  t.is(c.retryBackoff, "exponential");
  t.is(c.retryBaseMs, 1000);
  t.is(c.retryJitterPct, 20);
  t.is(c.deadLetterRetentionDays, 30);
  t.is(c.abandonedRetentionDays, 7);
  t.is(c.executionLogRetentionDays, 7);
  t.is(c.maxBodyBytes, 1024 * 1024);
  t.is(c.databaseUrl, undefined);
});

test("values are read and trimmed", (t) => {
  const c = loadConfig({ PICLOUD_PORT: " 9090 ", PICLOUD_TRIGGER_RETRY_BACKOFF: "linear", LOG_LEVEL: "debug", DATABASE_URL: "postgres://u@h:1/d" });
  t.is(c.port, 9090);
  t.is(c.retryBackoff, "linear");
  t.is(c.logLevel, "debug");
  t.is(c.databaseUrl, "postgres://u@h:1/d");
});

for (const [name, value, accepts] of [
  ["PICLOUD_PORT", "eighty", "an integer from 0 to 65535"],
  ["PICLOUD_PORT", "70000", "an integer from 0 to 65535"],
  ["PICLOUD_TRIGGER_RETRY_BACKOFF", "fibonacci", "one of exponential, linear, constant"],
  ["PICLOUD_TRIGGER_RETRY_JITTER_PCT", "150", "an integer from 0 to 100"],
  ["PICLOUD_DISPATCHER_CONCURRENCY", "0", "an integer from 1 to 1000"],
  ["PICLOUD_MAX_BODY_BYTES", "1.5", "an integer from 1"],
  ["LOG_LEVEL", "loud", "one of fatal, error, warn, info, debug, trace, silent"],
  ["DATABASE_URL", "mysql://x", "a postgres:// or postgresql:// URL"],
] as const) {
  test(`${name}=${value} is refused naming the variable and what it accepts`, (t) => {
    const err = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError });
    t.true(err!.message.includes(name), err!.message);
    t.true(err!.message.includes(accepts), err!.message);
  });
}

test("every malformed variable is reported at once", (t) => {
  const err = t.throws(() => loadConfig({ PICLOUD_PORT: "x", LOG_LEVEL: "y" }), { instanceOf: ConfigError });
  t.is((err as ConfigError).problems.length, 2);
});
