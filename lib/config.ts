// The one place that reads the environment. Every process calls loadConfig() once at start;
// a malformed value stops it with a message naming the variable and what it accepts.

export type Backoff = "exponential" | "linear" | "constant";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

type Reader<T> = { accepts: string; parse(raw: string): T | undefined };

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Reader<number> => ({
  accepts: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
  parse(raw) {
    if (!/^-?\d+$/.test(raw.trim())) return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
  },
});

const oneOf = <T extends string>(...values: T[]): Reader<T> => ({
  accepts: `one of ${values.join(", ")}`,
  parse: (raw) => (values as string[]).includes(raw.trim()) ? (raw.trim() as T) : undefined,
});

const bool: Reader<boolean> = {
  accepts: "true or false (also 1/0, yes/no)",
  parse(raw) {
    const v = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(v)) return true;
    if (["0", "false", "no", "off"].includes(v)) return false;
    return undefined;
  },
};

const postgresUrl: Reader<string> = {
  accepts: "a postgres:// or postgresql:// URL",
  parse(raw) {
    try {
      const u = new URL(raw.trim());
      return u.protocol === "postgres:" || u.protocol === "postgresql:" ? raw.trim() : undefined;
    } catch {
      return undefined;
    }
  },
};

const secret: Reader<string> = {
  accepts: "16 to 256 visible ASCII characters (no spaces)",
  parse: (raw) => (/^[\x21-\x7e]{16,256}$/.test(raw.trim()) ? raw.trim() : undefined),
};

const hostName: Reader<string> = {
  accepts: "an IP address or host name to listen on (e.g. 0.0.0.0, 127.0.0.1, ::)",
  parse: (raw) => (/^[A-Za-z0-9.:%_-]{1,253}$/.test(raw.trim()) ? raw.trim() : undefined),
};

const DAY_MS = 24 * 60 * 60 * 1000;

/** Each setting: environment variable, reader, default. The table is the documentation's source too. */
export const settings = {
  databaseUrl: { env: "DATABASE_URL", read: postgresUrl, default: undefined as string | undefined },
  port: { env: "PICLOUD_PORT", read: int(0, 65535), default: 8080 },
  host: { env: "PICLOUD_HOST", read: hostName, default: "0.0.0.0" },
  logLevel: { env: "LOG_LEVEL", read: oneOf<LogLevel>("fatal", "error", "warn", "info", "debug", "trace", "silent"), default: "info" as LogLevel },
  dispatcherConcurrency: { env: "PICLOUD_DISPATCHER_CONCURRENCY", read: int(1, 1000), default: 16 },
  executorWorkers: { env: "PICLOUD_EXECUTOR_WORKERS", read: int(1, 64), default: 1 },
  // A booted spare worker replaces a terminated one at once, for ~45 MB of RSS per process; off,
  // a replacement boots in ~0.4 s (only after a runaway script was stopped).
  executorStandby: { env: "PICLOUD_EXECUTOR_STANDBY", read: bool, default: false },
  maxTriggerDepth: { env: "PICLOUD_MAX_TRIGGER_DEPTH", read: int(0, 1000), default: 8 },
  retryMaxAttempts: { env: "PICLOUD_TRIGGER_RETRY_MAX_ATTEMPTS", read: int(1, 100), default: 3 },
  retryBackoff: { env: "PICLOUD_TRIGGER_RETRY_BACKOFF", read: oneOf<Backoff>("exponential", "linear", "constant"), default: "exponential" as Backoff },
  retryBaseMs: { env: "PICLOUD_TRIGGER_RETRY_BASE_MS", read: int(0, DAY_MS), default: 1000 },
  retryJitterPct: { env: "PICLOUD_TRIGGER_RETRY_JITTER_PCT", read: int(0, 100), default: 20 },
  deadLetterRetentionDays: { env: "PICLOUD_DEAD_LETTER_RETENTION_DAYS", read: int(1), default: 30 },
  abandonedRetentionDays: { env: "PICLOUD_ABANDONED_EXECUTIONS_RETENTION_DAYS", read: int(1), default: 7 },
  executionLogRetentionDays: { env: "PICLOUD_EXECUTION_LOG_RETENTION_DAYS", read: int(1), default: 7 },
  maxBodyBytes: { env: "PICLOUD_MAX_BODY_BYTES", read: int(1, 1024 * 1024 * 1024), default: 1024 * 1024 },
  // Outbox timings: taken from config so tests can make slow paths fast.
  leaseMs: { env: "PICLOUD_LEASE_MS", read: int(100, DAY_MS), default: 30_000 },
  pollIntervalMs: { env: "PICLOUD_POLL_INTERVAL_MS", read: int(10, DAY_MS), default: 5_000 },
  heartbeatMs: { env: "PICLOUD_HEARTBEAT_MS", read: int(50, DAY_MS), default: 2_000 },
  sweepIntervalMs: { env: "PICLOUD_SWEEP_INTERVAL_MS", read: int(50, DAY_MS), default: 5_000 },
  maxBacklog: { env: "PICLOUD_MAX_BACKLOG", read: int(1), default: 10_000 },
  shutdownTimeoutMs: { env: "PICLOUD_SHUTDOWN_TIMEOUT_MS", read: int(0, 10 * 60_000), default: 10_000 },
  pollOnly: { env: "PICLOUD_POLL_ONLY", read: bool, default: false },
  // Dispatchers and the sweeper serve /metrics here (0: off); the gateway serves it on its own port.
  metricsPort: { env: "PICLOUD_METRICS_PORT", read: int(0, 65535), default: 0 },
  metricsToken: { env: "PICLOUD_METRICS_TOKEN", read: secret, default: undefined as string | undefined },
  // pm2 numbers the instances of an app (0, 1, …): dispatcher n serves metrics on PICLOUD_METRICS_PORT + 1 + n.
  appInstance: { env: "NODE_APP_INSTANCE", read: int(0, 1000), default: 0 },
} as const;

type Settings = typeof settings;
export type Config = { -readonly [K in keyof Settings]: Settings[K]["default"] extends infer D ? (Settings[K]["read"] extends Reader<infer T> ? (undefined extends D ? T | undefined : T) : never) : never };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, s] of Object.entries(settings) as [string, { env: string; read: Reader<unknown>; default: unknown }][]) {
    const raw = env[s.env];
    if (raw === undefined || raw.trim() === "") {
      out[key] = s.default;
      continue;
    }
    const value = s.read.parse(raw);
    if (value === undefined) problems.push(`${s.env}=${JSON.stringify(raw)} is not valid: expected ${s.read.accepts}`);
    else out[key] = value;
  }
  const metricsPort = out.metricsPort as number;
  const lastPort = metricsPort + 1 + (out.appInstance as number);
  if (metricsPort > 0 && lastPort > 65535) {
    problems.push(`PICLOUD_METRICS_PORT=${metricsPort} with NODE_APP_INSTANCE=${String(out.appInstance)} puts a dispatcher's metrics on port ${lastPort}: expected at most 65535`);
  }
  if (problems.length) throw new ConfigError(problems);
  return out as Config;
}

/** For process entry points: load or print the problem and exit 1. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`picloud: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    process.stderr.write("picloud: DATABASE_URL is not set (npm start sets it, running an embedded Postgres when unset)\n");
    process.exit(1);
  }
  return config.databaseUrl;
}
