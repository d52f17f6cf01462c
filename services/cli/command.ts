// The shape of a CLI command and the argument handling all commands share: node:util parseArgs
// with the command's options plus --json, --url and --help; every problem is a UsageError that
// names the option or argument.
import { parseArgs } from "node:util";
import { client, type Client } from "./client.ts";
import { UsageError } from "./errors.ts";
import { env, readSaved, serverUrl } from "./settings.ts";

export type Option = { type: "string" | "boolean"; multiple?: boolean; value?: string; help: string };

export type Command = {
  /** "apps create" */
  name: string;
  /** Positional arguments: "name" required, "name?" optional. */
  args?: string[];
  summary: string;
  options?: Record<string, Option>;
  /** Needs no token (bootstrap, login). */
  anonymous?: boolean;
  /** Longer help: examples, notes. */
  more?: string;
  run(r: Run): Promise<void>;
};

export type Run = {
  json: boolean;
  url: string;
  /** The admin API with the saved or PICLOUD_TOKEN token. */
  api: Client;
  opt(name: string): string | undefined;
  need(name: string): string;
  flag(name: string): boolean;
  list(name: string): string[];
  arg(i: number): string | undefined;
  print(json: unknown, human: string): void;
};

const COMMON: Record<string, Option> = {
  json: { type: "boolean", help: "print the API's JSON instead of a table" },
  url: { type: "string", value: "url", help: "server (default: PICLOUD_URL, else the one saved by login, else http://localhost:8080)" },
  help: { type: "boolean", help: "this help" },
};

export function helpOf(c: Command): string {
  const args = (c.args ?? []).map((a) => (a.endsWith("?") ? `[${a.slice(0, -1)}]` : `<${a}>`)).join(" ");
  const opts = { ...c.options, ...COMMON };
  const lines = Object.entries(opts).map(([k, o]) => [`--${k}${o.type === "string" ? ` <${o.value ?? k}>` : ""}${o.multiple ? " …" : ""}`, o.help] as const);
  const width = Math.max(...lines.map(([l]) => l.length));
  return [`usage: picloud ${c.name}${args ? ` ${args}` : ""} [options]`, "", c.summary, "", "options:", ...lines.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`), ...(c.more ? ["", c.more] : [])].join("\n");
}

export async function runCommand(c: Command, argv: string[], out: (s: string) => void): Promise<void> {
  const options = { ...c.options, ...COMMON };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, multiple: o.multiple ?? false }])), allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err as Error));
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) {
    out(helpOf(c));
    return;
  }
  const wanted = c.args ?? [];
  const required = wanted.filter((a) => !a.endsWith("?"));
  if (parsed.positionals.length < required.length) throw new UsageError(`missing <${required[parsed.positionals.length]}> (see picloud ${c.name} --help)`);
  if (parsed.positionals.length > wanted.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[wanted.length])} (see picloud ${c.name} --help)`);
  for (const [k, v] of Object.entries(values)) {
    if (options[k]?.type === "string" && !options[k]?.multiple && v === "") throw new UsageError(`--${k} must not be empty`);
  }

  const saved = await readSaved();
  const url = serverUrl(values.url as string | undefined, saved);
  const token = env.token() ?? (url === saved.url ? saved.token : undefined);
  if (!c.anonymous && !token) throw new UsageError(`not signed in to ${url}: run picloud login --url ${url} --email <email> (or set PICLOUD_TOKEN)`);
  const json = values.json === true;
  const run: Run = {
    json,
    url,
    api: client(url, token),
    opt: (name) => values[name] as string | undefined,
    need(name) {
      const v = values[name];
      if (typeof v !== "string") throw new UsageError(`missing --${name} <${options[name]?.value ?? name}> (see picloud ${c.name} --help)`);
      return v;
    },
    flag: (name) => values[name] === true,
    list: (name) => ((values[name] as string[] | undefined) ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean),
    arg: (i) => parsed.positionals[i],
    print: (data, human) => out(json ? JSON.stringify(data, null, 2) : human),
  };
  await c.run(run);
}

/** parseArgs' messages, made short and in the CLI's words. */
function parseArgsMessage(err: Error): string {
  const code = (err as { code?: string }).code;
  const option = /'(-[^']*)'/.exec(err.message)?.[1]?.split(" ")[0];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option ?? ""}`.trim();
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/argument missing/.test(err.message)) return `${option ?? "an option"} needs a value`;
    return `${option ?? "an option"} takes no value`;
  }
  return err.message;
}

/** A whole number from an option, checked against a range. */
export function integer(r: Run, name: string, min: number, max: number): number | undefined {
  const v = r.opt(name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** ?limit=&cursor= for a list command's --limit and --cursor. */
export const PAGE_OPTIONS: Record<string, Option> = {
  limit: { type: "string", value: "n", help: "items per page, 1-200 (default 50)" },
  cursor: { type: "string", help: "the page after this cursor (printed under a full page)" },
};
export function pageQuery(r: Run, extra: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  const limit = integer(r, "limit", 1, 200);
  if (limit !== undefined) q.set("limit", String(limit));
  const cursor = r.opt("cursor");
  if (cursor) q.set("cursor", cursor);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
