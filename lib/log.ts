import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.ts";

export type { Logger };

/** The one logger factory: JSON lines, each carrying the process's `service`. */
export function createLogger(service: string, level: LogLevel = "info"): Logger {
  return pino({ level, base: { service, pid: process.pid } });
}
