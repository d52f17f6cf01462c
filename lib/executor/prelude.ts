// Sandbox-side JS evaluated in every context before the script. It captures JSON and the raw
// host primitives in a closure (a script that replaces JSON.parse cannot break the platform's
// own marshalling) and returns the internal helpers the host keeps handles to.
export const BASE_PRELUDE = String.raw`(() => {
  const parse = JSON.parse, stringify = JSON.stringify, keys = Object.keys, isArray = Array.isArray;
  const rawHost = globalThis.__host_raw, rawLog = globalThis.__log_raw;
  delete globalThis.__host_raw;
  delete globalThis.__log_raw;
  const show = (v) => {
    if (typeof v === "string") return v;
    if (v instanceof Error) return v.stack ? v.name + ": " + v.message + "\n" + v.stack : v.name + ": " + v.message;
    try { const s = stringify(v); return s === undefined ? String(v) : s; } catch { return String(v); }
  };
  const logger = (level) => (...args) => { rawLog(level, args.map(show).join(" ")); };
  globalThis.console = { log: logger("log"), info: logger("info"), warn: logger("warn"), error: logger("error"), debug: logger("debug") };
  globalThis.__host = (name, args) => rawHost(String(name), stringify(args === undefined ? [] : args)).then((s) => (s === undefined ? undefined : parse(s)));
  const RESPONSE_KEYS = ["status", "headers", "body"];
  return {
    call(fn, ctxJson) {
      if (typeof fn !== "function") throw new TypeError("the script's default export is not a function");
      return fn(parse(ctxJson));
    },
    finish(v) {
      if (v === undefined) return stringify({ kind: "empty" });
      if (v !== null && typeof v === "object" && !isArray(v) && typeof v.status === "number" && keys(v).every((k) => RESPONSE_KEYS.includes(k))) {
        const body = v.body;
        let bodyJson = null;
        if (body !== undefined && typeof body !== "string") {
          bodyJson = stringify(body);
          if (bodyJson === undefined) throw new TypeError("response body is not JSON-serializable");
        }
        return stringify({ kind: "response", status: v.status, headers: v.headers === undefined ? {} : v.headers, text: typeof body === "string" ? body : null, json: bodyJson });
      }
      const json = stringify(v);
      if (json === undefined) throw new TypeError("return value is not JSON-serializable (" + typeof v + ")");
      return stringify({ kind: "value", json });
    },
  };
})()`;
