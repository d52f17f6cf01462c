import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  InvalidScriptError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthenticatedError,
  ValidationError,
} from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";

// The one place that maps domain errors to HTTP statuses.
export const statusOf = (err: DomainError): ContentfulStatusCode => {
  if (err instanceof ValidationError) return 400;
  if (err instanceof UnauthenticatedError) return 401;
  if (err instanceof ForbiddenError) return 403;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof PayloadTooLargeError) return 413;
  if (err instanceof InvalidScriptError) return 422;
  return 400;
};

export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  if (err instanceof DomainError) {
    const body: Record<string, unknown> = { error: err.code, message: err.message };
    if (err instanceof ValidationError) body.field = err.field;
    return c.json(body, statusOf(err));
  }
  log.error({ err, path: c.req.path }, "unhandled error");
  return c.json({ error: "internal", message: "internal error" }, 500);
}
