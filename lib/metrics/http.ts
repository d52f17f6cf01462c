// Serving a registry: GET /metrics, optionally behind a bearer token (PICLOUD_METRICS_TOKEN).
// The gateway mounts `metricsResponse` on its own port; dispatchers and the sweeper, which have
// no HTTP server, get a small one of their own (`serveMetrics`).
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.ts";
import { registry } from "./index.ts";

/** Whether an Authorization header carries the token (always, when no token is set). */
export function authorized(header: string | undefined | null, token: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? "")?.[1] ?? "");
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** The exposition for one scrape: status, content type and text. */
export async function metricsResponse(authorization: string | undefined | null, token: string | undefined): Promise<{ status: number; type: string; body: string }> {
  if (!authorized(authorization, token)) return { status: 401, type: "text/plain; charset=utf-8", body: "metrics need Authorization: Bearer <PICLOUD_METRICS_TOKEN>\n" };
  return { status: 200, type: registry.contentType, body: await registry.metrics() };
}

/**
 * The port a dispatcher or sweeper serves metrics on, or null (PICLOUD_METRICS_PORT 0: off). The
 * sweeper takes the base port; dispatcher n (pm2's NODE_APP_INSTANCE) takes base + 1 + n, so a
 * host's processes never collide.
 */
export function metricsPort(service: "dispatcher" | "sweeper", config: { metricsPort: number; appInstance: number }): number | null {
  if (config.metricsPort === 0) return null;
  return service === "sweeper" ? config.metricsPort : config.metricsPort + 1 + config.appInstance;
}

/**
 * A small HTTP server for GET /metrics. A port that cannot be bound is logged, not fatal: the
 * process's work matters more than its metrics (and pm2 would restart it in a loop).
 */
export async function serveMetrics(port: number, host: string, token: string | undefined, log: Logger): Promise<Server | null> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    metricsResponse(req.headers.authorization, token).then(
      (r) => res.writeHead(r.status, { "content-type": r.type }).end(r.body),
      (err) => {
        log.error({ err: String(err) }, "collecting metrics failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("collecting metrics failed\n");
      },
    );
  });
  return new Promise((resolve) => {
    server.once("error", (err) => {
      log.error({ err: String(err), port, host }, "cannot serve metrics on this port; running without");
      resolve(null);
    });
    server.listen(port, host, () => {
      log.info({ port: (server.address() as AddressInfo).port, host }, "serving /metrics");
      resolve(server);
    });
  });
}
