// Shared pieces of the admin handlers: JSON bodies validated with zod (the first problem is a 400
// naming its field), the caller and their scope, and list paging.
import type { Context } from "hono";
import { z, type ZodTypeAny } from "zod";
import { hasScope, type Scope } from "../../../lib/auth/scopes.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import { ForbiddenError, ValidationError } from "../../../lib/errors.ts";
import { parseLimit, type PageRequest } from "../../../lib/pagination.ts";

export type AdminEnv = { Variables: { principal: Principal } };
export type AdminContext = Context<AdminEnv>;

/** The request body as JSON (an empty body is {}); malformed JSON is a 400. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError("body", "not valid JSON");
  }
}

/** Validates with zod; the first problem becomes a 400 naming its field. */
export function parse<S extends ZodTypeAny>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === "unrecognized_keys") throw new ValidationError([...issue.path, issue.keys[0]].join("."), "is not a known field");
  const field = issue.path.length ? issue.path.join(".") : "body";
  const message = issue.code === "invalid_type" && issue.received === "undefined" ? "is required" : issue.message;
  throw new ValidationError(field, message);
}

export async function body<S extends ZodTypeAny>(c: Context, schema: S): Promise<z.infer<S>> {
  return parse(schema, await readJson(c));
}

/**
 * The signed-in caller, after checking the token carries `scope`. Handlers call it before they
 * look anything up, so a token without the scope learns nothing about what exists.
 */
export function caller(c: AdminContext, scope: Scope): Principal {
  return withScope(c.get("principal"), scope);
}

/** The principal, after checking its token carries `scope` (the dashboard's session token is one too). */
export function withScope(who: Principal, scope: Scope): Principal {
  if (!hasScope(who.scopes, scope)) throw new ForbiddenError(`this token lacks the ${scope} scope`);
  return who;
}

/** ?limit= (default 50, 1..200) and ?cursor= of a list request. */
export function page(c: Context): PageRequest {
  return { limit: parseLimit(c.req.query("limit")), cursor: c.req.query("cursor") };
}

export const email = z.string().trim().toLowerCase().email("must be an email address").max(320);
/** The password policy: at least 8 characters (and at most 1024, to bound the KDF's input). */
export const password = z.string().min(8, "must be at least 8 characters").max(1024, "must be at most 1024 characters");
