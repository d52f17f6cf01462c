// Scraping /metrics in tests: a strict parser of the Prometheus text exposition format (0.0.4),
// so a malformed line fails the test, and `promtool check metrics` when the machine has it.
import { spawnSync } from "node:child_process";

export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Exposition = { types: Map<string, string>; samples: Sample[] };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);
const SUFFIXES: Record<string, string[]> = { histogram: ["_bucket", "_sum", "_count"], summary: ["_sum", "_count", ""], counter: [""], gauge: [""], untyped: [""] };

function parseValue(raw: string, line: string): number {
  // As Go's ParseFloat reads it (Prometheus does): NaN and Inf in any case (prom-client writes "Nan").
  if (/^nan$/i.test(raw)) return NaN;
  if (/^\+?inf(inity)?$/i.test(raw)) return Infinity;
  if (/^-inf(inity)?$/i.test(raw)) return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`bad sample value ${JSON.stringify(raw)} in: ${line}`);
  return Number(raw);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const e = text[++j];
        if (e === "n") value += "\n";
        else if (e === "\\" || e === '"') value += e;
        else throw new Error(`bad escape \\${e} in: ${line}`);
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (i < text.length) {
      if (text[i] !== ",") throw new Error(`expected , between labels in: ${line}`);
      i++;
    }
  }
  return labels;
}

/** Parses an exposition; throws naming the first line that breaks the format's rules. */
export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a newline");
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const line of text.split("\n").slice(0, -1)) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, what, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (what === "TYPE") {
        if (!TYPES.has(rest!)) throw new Error(`unknown type in: ${line}`);
        if (types.has(name!)) throw new Error(`TYPE twice for ${name}`);
        if (samples.some((s) => familyOf(s.name, types) === name)) throw new Error(`TYPE for ${name} after its samples`);
        types.set(name!, rest!);
      } else {
        if (helped.has(name!)) throw new Error(`HELP twice for ${name}`);
        helped.add(name!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const sample = { name: m[1]!, labels: m[2] ? parseLabels(m[2], line) : {}, value: parseValue(m[3]!, line) };
    const family = familyOf(sample.name, types);
    if (!family) throw new Error(`sample ${sample.name} has no TYPE before it`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`sample twice: ${line}`);
    seen.add(key);
    if (types.get(family) === "counter" && !(sample.value >= 0)) throw new Error(`negative or NaN counter: ${line}`);
    samples.push(sample);
  }
  checkHistograms({ types, samples });
  return { types, samples };
}

function familyOf(sample: string, types: Map<string, string>): string | undefined {
  if (types.has(sample)) return SUFFIXES[types.get(sample)!]!.includes("") ? sample : undefined;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = sample.slice(0, -suffix.length);
    if (sample.endsWith(suffix) && SUFFIXES[types.get(base) ?? ""]?.includes(suffix)) return base;
  }
  return undefined;
}

/** Buckets cumulative and ending in +Inf equal to _count, per series. */
function checkHistograms(e: Exposition): void {
  for (const [name, type] of e.types) {
    if (type !== "histogram") continue;
    const series = new Map<string, { le: number; v: number }[]>();
    for (const s of e.samples.filter((s) => s.name === `${name}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      const k = JSON.stringify(Object.entries(rest).sort());
      series.set(k, [...(series.get(k) ?? []), { le: parseValue(le, name), v: s.value }]);
    }
    for (const [k, buckets] of series) {
      buckets.sort((a, b) => a.le - b.le);
      buckets.forEach((b, i) => {
        if (i && b.v < buckets[i - 1]!.v) throw new Error(`${name}${k}: buckets not cumulative`);
      });
      const inf = buckets.at(-1)!;
      const count = e.samples.find((s) => s.name === `${name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k);
      if (inf.le !== Infinity || !count || count.value !== inf.v) throw new Error(`${name}${k}: +Inf bucket missing or not equal to _count`);
    }
  }
}

/** The value of one sample (labels must match exactly, beside `service`), or undefined. */
export function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  const s = e.samples.find((s) => s.name === name && want.every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).filter((k) => k !== "service").length === want.length);
  return s?.value;
}

/**
 * `promtool check metrics` on the text, when promtool is installed (Debian: apt-get install
 * prometheus); null without it. `problems`: every complaint (a parse error, or a lint of a name)
 * except the lints of prom-client's own process metrics (nodejs_active_*_total are gauges).
 */
export function promtoolCheck(text: string): { problems: string[]; output: string } | null {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (r.error) return null;
  const output = `${r.stdout}${r.stderr}`;
  const problems = output.split("\n").filter((l) => l.trim() && !/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l.trim()));
  if (r.status !== 0 && !problems.length && !/should not have "_total" suffix/.test(output)) problems.push(`exit ${r.status}`);
  return { problems, output };
}

/** GET a /metrics URL and parse it (strictly). */
export async function scrape(url: string, token?: string): Promise<Exposition & { text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get("content-type") ?? "")) throw new Error(`GET ${url}: content-type ${res.headers.get("content-type")}`);
  return { ...parseExposition(text), text };
}
