// What the CLI prints: the API's JSON as is with --json, else tables and aligned fields for a
// person. No colours: output is often piped or captured.
import Table from "cli-table3";

type Cell = string | number | boolean | null | undefined;

export function table(head: string[], rows: Cell[][]): string {
  if (!rows.length) return "(none)";
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(cell));
  return t.toString();
}

/** `name  value` lines, names padded to one column; undefined values are left out. */
export function fields(pairs: [string, Cell][]): string {
  const shown = pairs.filter(([, v]) => v !== undefined);
  const width = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join("\n");
}

function cell(v: Cell): string {
  if (v === null || v === undefined || v === "") return "-";
  return String(v);
}

/** A JSON value on one line, cut at `max` characters for a table cell. */
export function short(v: unknown, max = 60): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** An ISO timestamp as "YYYY-MM-DD HH:MM:SS" (UTC), for tables. */
export const when = (iso: string | null | undefined): string => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:?00)$/, "") : "-");

/** A list page's "more" hint: the cursor to pass for the next page. */
export const more = (cursor: string | null | undefined): string => (cursor ? `\nmore: --cursor ${cursor}` : "");
