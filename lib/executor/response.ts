// The return rule (SPEC section 3), read straight from the script's value in the sandbox:
// an object with a numeric status and no keys besides status/headers/body is the HTTP response
// (object body → JSON, string body → text); undefined → 204; anything else → 200 with the
// value as JSON. What cannot be honoured is an invalid return value.
import type { ScriptResponse } from "./types.ts";

/** What the shaping needs from the sandbox; each may run script code (getters, toJSON, proxies) and throw. */
export interface ValueReader<H> {
  typeOf(h: H): string;
  isNull(h: H): boolean;
  isArray(h: H): boolean;
  /** Object.keys */
  keys(h: H): string[];
  get(h: H, key: string): H;
  number(h: H): number;
  string(h: H): string;
  /** JSON.stringify as the script's realm has it from the start; undefined when not serializable */
  json(h: H): string | undefined;
  release(h: H): void;
}

export class InvalidReturn extends Error {}

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
const RESPONSE_KEYS = new Set(["status", "headers", "body"]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;

export function shapeResponse<H>(r: ValueReader<H>, v: H): ScriptResponse {
  const type = r.typeOf(v);
  if (type === "undefined") return { status: 204, headers: {}, body: "" };
  if (type === "object" && !r.isNull(v) && !r.isArray(v)) {
    const keys = r.keys(v);
    if (keys.every((k) => RESPONSE_KEYS.has(k)) && keys.includes("status")) {
      const status = r.get(v, "status");
      try {
        if (r.typeOf(status) === "number") return responseObject(r, v, r.number(status));
      } finally {
        r.release(status);
      }
    }
  }
  if (type === "function" || type === "symbol") throw new InvalidReturn(`the return value is not JSON-serializable (${type})`);
  const json = r.json(v);
  if (json === undefined) throw new InvalidReturn(`the return value is not JSON-serializable (${type})`);
  return { status: 200, headers: { "content-type": JSON_TYPE }, body: json };
}

function responseObject<H>(r: ValueReader<H>, v: H, status: number): ScriptResponse {
  // 1xx cannot be a final response (and the gateway's Response() refuses them).
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new InvalidReturn(`status must be an integer from 200 to 599, got ${status}`);
  }
  const headers = readHeaders(r, v);
  if (status === 204 || status === 304) return { status, headers, body: "" };
  const body = r.get(v, "body");
  try {
    const type = r.typeOf(body);
    if (type === "undefined") return { status, headers, body: "" };
    if (type === "string") {
      headers["content-type"] ??= TEXT_TYPE;
      return { status, headers, body: r.string(body) };
    }
    const json = type === "function" || type === "symbol" ? undefined : r.json(body);
    if (json === undefined) throw new InvalidReturn(`the response body is not JSON-serializable (${type})`);
    headers["content-type"] ??= JSON_TYPE;
    return { status, headers, body: json };
  } finally {
    r.release(body);
  }
}

function readHeaders<H>(r: ValueReader<H>, v: H): Record<string, string> {
  const out: Record<string, string> = {};
  const h = r.get(v, "headers");
  try {
    const type = r.typeOf(h);
    if (type === "undefined") return out;
    if (type !== "object" || r.isNull(h) || r.isArray(h)) throw new InvalidReturn("headers must be an object of strings");
    for (const name of r.keys(h)) {
      const value = r.get(h, name);
      try {
        if (r.typeOf(value) !== "string") throw new InvalidReturn(`header ${JSON.stringify(name)} must be a string, got ${r.typeOf(value)}`);
        const text = r.string(value);
        if (!TOKEN.test(name) || BAD_VALUE.test(text)) throw new InvalidReturn(`header ${JSON.stringify(name)} is not a valid HTTP header`);
        out[name.toLowerCase()] = text;
      } finally {
        r.release(value);
      }
    }
    return out;
  } finally {
    r.release(h);
  }
}
