// The return rule (SPEC section 3): an object with a numeric status and no keys besides
// status/headers/body is the HTTP response (object body → JSON, string body → text);
// undefined → 204; anything else → 200 with the value as JSON. What cannot be honoured is an
// invalid return value. The sandbox first reads the value into a `Described` (see sandbox.ts:
// host-side on a first run, with a small in-sandbox function on warm runs); the rule and its
// checks live here.
import type { ScriptResponse } from "./types.ts";

export type Described =
  | { kind: "undefined" }
  /** `json` null: the value has no JSON form (a function, a symbol, undefined inside toJSON …). */
  | { kind: "value"; type: string; json: string | null }
  | {
      kind: "response";
      status: unknown;
      /** null: no headers key; "bad": not a plain object; else [name, value if a string, typeof value] */
      headers: null | "bad" | [string, string | null, string][];
      bodyType: string;
      /** the string body itself, or the body's JSON; null when undefined or without a JSON form */
      body: string | null;
    };

export class InvalidReturn extends Error {}

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
const noJson = (type: string) => type === "function" || type === "symbol" || type === "undefined";

export function shapeResponse(d: Described): ScriptResponse {
  if (d.kind === "undefined") return { status: 204, headers: {}, body: "" };
  if (d.kind === "value") {
    if (d.json === null) throw new InvalidReturn(`the return value is not JSON-serializable (${d.type})`);
    return { status: 200, headers: { "content-type": JSON_TYPE }, body: d.json };
  }
  const status = d.status;
  // 1xx cannot be a final response (and the gateway's Response() refuses them).
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new InvalidReturn(`status must be an integer from 200 to 599, got ${String(status)}`);
  }
  const headers: Record<string, string> = {};
  if (d.headers === "bad") throw new InvalidReturn("headers must be an object of strings");
  for (const [name, value, type] of d.headers ?? []) {
    if (value === null) throw new InvalidReturn(`header ${JSON.stringify(name)} must be a string, got ${type}`);
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw new InvalidReturn(`header ${JSON.stringify(name)} is not a valid HTTP header`);
    headers[name.toLowerCase()] = value;
  }
  if (status === 204 || status === 304 || d.bodyType === "undefined") return { status, headers, body: "" };
  if (d.bodyType === "string") {
    headers["content-type"] ??= TEXT_TYPE;
    return { status, headers, body: d.body ?? "" };
  }
  if (d.body === null || noJson(d.bodyType)) throw new InvalidReturn(`the response body is not JSON-serializable (${d.bodyType})`);
  headers["content-type"] ??= JSON_TYPE;
  return { status, headers, body: d.body };
}

/**
 * The same reading as sandbox.ts's host-side one, as a function evaluated in the sandbox once
 * a sandbox is reused (one call instead of a dozen host↔sandbox crossings). It is handed the
 * realm's original Object.keys, Array.isArray, JSON.stringify and Reflect.get, so a script
 * replacing those globals cannot change how its value is read. Its result is the Described's
 * JSON, a newline, then the body text (string body or JSON) so big bodies are not encoded twice.
 */
export const DESCRIBE_SOURCE = `(keys, isArray, stringify, get) => (v) => {
  const t = typeof v;
  if (t === "undefined") return '{"kind":"undefined"}\\n';
  if (t === "object" && v !== null && !isArray(v)) {
    const ks = keys(v);
    let response = false;
    for (let i = 0; i < ks.length; i++) {
      const k = ks[i];
      if (k === "status") response = true;
      else if (k !== "headers" && k !== "body") { response = false; break; }
    }
    if (response) {
      const status = get(v, "status");
      if (typeof status === "number") {
        const h = get(v, "headers");
        let headers = null;
        if (h !== undefined) {
          if (typeof h !== "object" || h === null || isArray(h)) headers = "bad";
          else {
            headers = [];
            const hk = keys(h);
            for (let i = 0; i < hk.length; i++) { const x = get(h, hk[i]); headers[i] = [hk[i], typeof x === "string" ? x : null, typeof x]; }
          }
        }
        const b = get(v, "body");
        const bt = typeof b;
        const body = bt === "string" ? b : bt === "undefined" || bt === "function" || bt === "symbol" ? undefined : stringify(b);
        return stringify({ kind: "response", status, headers, bodyType: bt, hasBody: body !== undefined }) + "\\n" + (body === undefined ? "" : body);
      }
    }
  }
  const json = t === "function" || t === "symbol" ? undefined : stringify(v);
  return stringify({ kind: "value", type: t, hasBody: json !== undefined }) + "\\n" + (json === undefined ? "" : json);
}`;

/** Reads DESCRIBE_SOURCE's answer. */
export function parseDescribed(text: string): Described {
  const nl = text.indexOf("\n");
  const head = JSON.parse(text.slice(0, nl)) as {
    kind: string;
    type?: string;
    status?: unknown;
    headers?: Extract<Described, { kind: "response" }>["headers"];
    bodyType?: string;
    hasBody?: boolean;
  };
  const body = head.hasBody ? text.slice(nl + 1) : null;
  if (head.kind === "undefined") return { kind: "undefined" };
  if (head.kind === "value") return { kind: "value", type: head.type!, json: body };
  return { kind: "response", status: head.status, headers: head.headers ?? null, bodyType: head.bodyType!, body };
}
