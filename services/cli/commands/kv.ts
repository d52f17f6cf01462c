// kv: an app's key-value store, as the scripts see it. A write here fires the app's KV
// triggers like a script's write does.
import { seg } from "../client.ts";
import { integer, PAGE_OPTIONS, pageQuery, type Command, type Run } from "../command.ts";
import { UsageError } from "../errors.ts";
import { fields, more, table, when } from "../output.ts";

type Entry = { collection: string; key: string; value: unknown; bytes: number; expires_at: string | null; updated_at: string; op?: string | null };
type KeyInfo = Omit<Entry, "collection" | "value">;

const app = { app: { type: "string", value: "slug", help: "the app (required)" } } as const;
const keyPath = (r: Run) => `/admin/apps/${seg(r.need("app"))}/kv/${seg(r.arg(0)!)}/keys/${seg(r.arg(1)!)}`;

export const kvGet: Command = {
  name: "kv get",
  args: ["collection", "key"],
  summary: "A key's value (as JSON).",
  options: app,
  async run(r) {
    const entry = await r.api.get<Entry>(keyPath(r));
    r.print(entry, JSON.stringify(entry.value, null, 2));
  },
};

export const kvSet: Command = {
  name: "kv set",
  args: ["collection", "key", "value-json"],
  summary: "Write a key. The value is JSON: '{\"n\":1}', '\"text\"', 42, true, null …",
  options: { ...app, ttl: { type: "string", value: "secs", help: "the key expires after this many seconds" } },
  async run(r) {
    const raw = r.arg(2)!;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      const hint = /^\s*[[{"]/.test(raw) ? "" : `; text needs JSON quotes: '${JSON.stringify(raw)}'`;
      throw new UsageError(`<value-json> is not valid JSON (${(err as Error).message})${hint}`);
    }
    const ttl = integer(r, "ttl", 1, 10 * 365 * 24 * 3600);
    const entry = await r.api.put<Entry>(keyPath(r), ttl === undefined ? { value } : { value, ttl_secs: ttl });
    r.print(entry, fields([[entry.op === "insert" ? "inserted" : "updated", `${entry.collection} / ${entry.key}`], ["bytes", entry.bytes], ["expires", entry.expires_at ? when(entry.expires_at) : undefined]]));
  },
};

export const kvDelete: Command = {
  name: "kv delete",
  args: ["collection", "key"],
  summary: "Delete a key (fires delete triggers).",
  options: app,
  async run(r) {
    await r.api.delete(keyPath(r));
    r.print({ deleted: true, collection: r.arg(0), key: r.arg(1) }, `deleted ${r.arg(0)} / ${r.arg(1)}`);
  },
};

export const kvList: Command = {
  name: "kv list",
  args: ["collection?"],
  summary: "Without a collection: the app's collections and their key counts. With one: its keys.",
  options: { ...app, prefix: { type: "string", help: "only keys starting with this" }, ...PAGE_OPTIONS },
  async run(r) {
    const collection = r.arg(0);
    const base = `/admin/apps/${seg(r.need("app"))}/kv`;
    if (collection === undefined) {
      if (r.opt("prefix") !== undefined) throw new UsageError("--prefix needs a <collection>");
      const page = await r.api.get<{ items: { name: string; keys: number }[]; cursor: string | null }>(`${base}${pageQuery(r)}`);
      r.print(page, table(["collection", "keys"], page.items.map((c) => [c.name, c.keys])) + more(page.cursor));
      return;
    }
    const page = await r.api.get<{ items: KeyInfo[]; cursor: string | null }>(`${base}/${seg(collection)}/keys${pageQuery(r, { prefix: r.opt("prefix") })}`);
    r.print(page, table(["key", "bytes", "expires", "updated"], page.items.map((k) => [k.key, k.bytes, when(k.expires_at), when(k.updated_at)])) + more(page.cursor));
  },
};
