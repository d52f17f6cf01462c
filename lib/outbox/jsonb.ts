/**
 * JSON.stringify output bound for a jsonb column. Postgres refuses two things JSON allows, and
 * one refused row fails its whole statement (a script that returns or logs one would wedge its
 * dispatcher's completions): U+0000, and lone UTF-16 surrogates (which JSON.stringify writes as
 * \udXXX escapes; it never escapes a proper pair). Both become U+FFFD. Only real escapes are
 * replaced, not an escaped backslash followed by "u0000".
 */
export function jsonbText(json: string): string {
  return json.includes("\\u") ? json.replace(/(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g, "$1\\ufffd") : json;
}
