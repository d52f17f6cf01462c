import type { Context } from "hono";
import { z, type ZodTypeAny } from "zod";
import { hasScope, type Scope } from "../../../lib/auth/scopes.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import { ForbiddenError, ValidationError } from "../../../lib/errors.ts";

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
  const field = issue.path.length ? issue.path.join(".") : "body";
  const message = issue.code === "invalid_type" && issue.received === "undefined" ? "is required" : issue.message;
  throw new ValidationError(field, message);
}

export async function body<S extends ZodTypeAny>(c: Context, schema: S): Promise<z.infer<S>> {
  return parse(schema, await readJson(c));
}

/** The signed-in caller, after checking the token carries `scope`. */
export function caller(c: AdminContext, scope: Scope): Principal {
  const who = c.get("principal");
  if (!hasScope(who.scopes, scope)) throw new ForbiddenError(`this token lacks the ${scope} scope`);
  return who;
}

export const email = z.string().trim().toLowerCase().email("must be an email address").max(320);
export const password = z.string().min(8, "must be at least 8 characters").max(1024);
