// Domain errors. lib/ code throws these; services/gateway/errors.ts is the one place that maps
// them to HTTP statuses. `code` is the stable machine-readable `error` field of the API.

export class DomainError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input: names the field (dotted path) and what was wrong. → 400 */
export class ValidationError extends DomainError {
  constructor(readonly field: string, message: string) {
    super("invalid_request", `${field}: ${message}`);
  }
}
/** → 401 */
export class UnauthenticatedError extends DomainError {
  constructor(message = "missing or invalid credentials") {
    super("unauthorized", message);
  }
}
/** → 403 */
export class ForbiddenError extends DomainError {
  constructor(message = "not allowed") {
    super("forbidden", message);
  }
}
/** → 404 (also for another app's resources: no existence leak) */
export class NotFoundError extends DomainError {
  constructor(what = "resource") {
    super("not_found", `${what} not found`);
  }
}
/** → 409 */
export class ConflictError extends DomainError {
  constructor(message: string) {
    super("conflict", message);
  }
}
/** → 413 */
export class PayloadTooLargeError extends DomainError {
  constructor(limit: number) {
    super("payload_too_large", `request body is over the limit of ${limit} bytes`);
  }
}
/** A script that does not compile. → 422 */
export class InvalidScriptError extends DomainError {
  constructor(message: string) {
    super("invalid_script", message);
  }
}
