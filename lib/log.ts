import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.ts";

export type { DestinationStream, Logger };

/** The one logger factory: JSON lines, each carrying the process's `service` (to stdout unless `destination`). */
export function createLogger(service: string, level: LogLevel = "info", destination?: DestinationStream): Logger {
  const options = { level, base: { service, pid: process.pid } };
  return destination ? pino(options, destination) : pino(options);
}
