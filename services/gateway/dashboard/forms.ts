// Reading an HTML form post into the shapes the admin API's zod schemas take, so both validate
// the same way (same fields, same messages).
import type { Context } from "hono";

export type Form = { str(name: string): string | undefined; all(name: string): string[] };

export async function formOf(c: Context): Promise<Form> {
  const body = await c.req.parseBody({ all: true });
  const values = (name: string) => {
    const v = body[name];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === "string");
  };
  return { str: (name) => values(name)[0], all: values };
}

/** An optional number field: empty → undefined; digits → a number; anything else as typed (the schema names the field). */
export function optionalInt(form: Form, name: string): number | string | undefined {
  const v = form.str(name)?.trim();
  if (v === undefined || v === "") return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}
