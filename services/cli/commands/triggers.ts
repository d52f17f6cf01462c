// triggers: run a script when the app's KV store changes (a KV trigger) or when a dead letter
// is written (a dead-letter trigger), each with its retry policy.
import { findScript, pages, seg, type ScriptInfo } from "../client.ts";
import { integer, PAGE_OPTIONS, pageQuery, type Command, type Run } from "../command.ts";
import { UsageError } from "../errors.ts";
import { fields, more, table } from "../output.ts";

type Policy = { max_attempts: number; backoff: string; base_ms: number; jitter_pct: number };
type Trigger = { id: string; script_id: string; kind: string; collection_glob: string | null; ops: string[] | null; enabled: boolean; effective_retry: Policy };

const app = { app: { type: "string", value: "slug", help: "the app (required)" } } as const;
const OPS = ["insert", "update", "delete"];
const BACKOFFS = ["exponential", "linear", "constant"];
const policyText = (p: Policy) => `${p.max_attempts} × ${p.backoff} ${p.base_ms} ms ±${p.jitter_pct}%`;

export const triggersAdd: Command = {
  name: "triggers add",
  summary: "Run a script on KV writes (--collection) or on dead letters (--dead-letter).",
  options: {
    ...app,
    script: { type: "string", value: "name", help: "the script to run (its name in the app, or its id) (required)" },
    collection: { type: "string", value: "glob", help: "KV collections: a name, prefix* or *" },
    ops: { type: "string", multiple: true, value: "op", help: "KV operations among insert, update, delete (default insert,update)" },
    "dead-letter": { type: "boolean", help: "run the script when a dead letter of this app is written" },
    "max-attempts": { type: "string", value: "n", help: "attempts before a dead letter (default PICLOUD_TRIGGER_RETRY_MAX_ATTEMPTS)" },
    backoff: { type: "string", value: "kind", help: "exponential, linear or constant" },
    "base-ms": { type: "string", value: "ms", help: "base delay between attempts" },
  },
  more: "examples:\n  picloud triggers add --app demo --script audit --collection 'orders*' --ops insert,update\n  picloud triggers add --app demo --script alert --dead-letter",
  async run(r) {
    const slug = r.need("app");
    const scriptRef = r.need("script");
    const deadLetter = r.flag("dead-letter");
    const collection = r.opt("collection");
    const ops = r.list("ops");
    if (deadLetter === (collection !== undefined)) throw new UsageError("give either --collection <glob> (a KV trigger) or --dead-letter");
    if (deadLetter && ops.length) throw new UsageError("--ops is for KV triggers (--collection)");
    const badOp = ops.find((o) => !OPS.includes(o));
    if (badOp) throw new UsageError(`--ops: ${JSON.stringify(badOp)} is not one of ${OPS.join(", ")}`);
    const backoff = r.opt("backoff");
    if (backoff !== undefined && !BACKOFFS.includes(backoff)) throw new UsageError(`--backoff must be one of ${BACKOFFS.join(", ")}, not ${JSON.stringify(backoff)}`);
    const retry = { max_attempts: integer(r, "max-attempts", 1, 100), backoff, base_ms: integer(r, "base-ms", 0, 86_400_000) };
    const hasRetry = Object.values(retry).some((v) => v !== undefined);
    const script = await scriptByRef(r, slug, scriptRef);
    const body = deadLetter
      ? { script_id: script.id, ...(hasRetry ? { retry } : {}) }
      : { script_id: script.id, collection_glob: collection, ops: ops.length ? [...new Set(ops)] : ["insert", "update"], ...(hasRetry ? { retry } : {}) };
    const t = await r.api.post<Trigger>(`/admin/apps/${seg(slug)}/triggers/${deadLetter ? "dead_letter" : "kv"}`, body);
    r.print(t, fields([["created trigger", t.id], ["kind", t.kind], ["script", script.name], ["collections", t.collection_glob ?? undefined], ["ops", t.ops?.join(",")], ["retry", policyText(t.effective_retry)]]));
  },
};

export const triggersList: Command = {
  name: "triggers list",
  summary: "An app's triggers.",
  options: { ...app, ...PAGE_OPTIONS },
  async run(r) {
    const slug = r.need("app");
    const page = await r.api.get<{ items: Trigger[]; cursor: string | null }>(`/admin/apps/${seg(slug)}/triggers${pageQuery(r)}`);
    if (r.json) return r.print(page, "");
    const names = new Map<string, string>();
    for await (const s of pages<ScriptInfo>(r.api, `/admin/apps/${seg(slug)}/scripts`)) names.set(s.id, s.name);
    r.print(
      page,
      table(
        ["id", "kind", "script", "collections", "ops", "retry", "enabled"],
        page.items.map((t) => [t.id, t.kind, names.get(t.script_id) ?? t.script_id, t.collection_glob, t.ops?.join(","), policyText(t.effective_retry), t.enabled ? "yes" : "no"]),
      ) + more(page.cursor),
    );
  },
};

export const triggersDelete: Command = {
  name: "triggers delete",
  args: ["id"],
  summary: "Delete a trigger.",
  options: app,
  async run(r) {
    await r.api.delete(`/admin/apps/${seg(r.need("app"))}/triggers/${seg(r.arg(0)!)}`);
    r.print({ deleted: true, id: r.arg(0) }, `deleted trigger ${r.arg(0)}`);
  },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function scriptByRef(r: Run, slug: string, ref: string): Promise<ScriptInfo> {
  if (UUID.test(ref)) return r.api.get<ScriptInfo>(`/admin/scripts/${seg(ref)}`);
  const s = await findScript(r.api, slug, ref);
  if (!s) throw new UsageError(`--script: app ${slug} has no script named ${ref} (deploy it first: picloud deploy ${ref}.js --app ${slug})`);
  return s;
}
