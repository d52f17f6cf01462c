// dead-letters: executions that failed their last attempt. List them, look at one, run one
// again (replay), or mark it dealt with (resolve: "ignored").
import { seg } from "../client.ts";
import { PAGE_OPTIONS, pageQuery, type Command, type Run } from "../command.ts";
import { fields, more, short, table, when } from "../output.ts";

type DeadLetter = {
  id: string;
  execution_id: string;
  kind: string;
  script_id: string | null;
  trigger_id: string | null;
  route_id: string | null;
  payload: Record<string, unknown>;
  attempts: number;
  last_error: { code?: string; message?: string } | null;
  handler_error: { code?: string; message?: string } | null;
  first_failed_at: string;
  last_failed_at: string;
  resolution: string | null;
  resolved_at: string | null;
  replay_execution_id: string | null;
};

const app = { app: { type: "string", value: "slug", help: "the app (required)" } } as const;
const base = (r: Run) => `/admin/apps/${seg(r.need("app"))}/dead-letters`;
const errorText = (e: DeadLetter["last_error"]) => (e ? `${e.code ?? "error"}: ${e.message ?? ""}` : "-");

export const deadLettersList: Command = {
  name: "dead-letters list",
  summary: "An app's dead letters, newest first.",
  options: { ...app, resolution: { type: "string", help: "all (default), unresolved (open or handler_failed), none, replayed, ignored or handler_failed" }, ...PAGE_OPTIONS },
  async run(r) {
    const page = await r.api.get<{ items: DeadLetter[]; cursor: string | null }>(`${base(r)}${pageQuery(r, { resolution: r.opt("resolution") })}`);
    r.print(
      page,
      table(
        ["id", "kind", "attempts", "last error", "resolution", "last failed"],
        page.items.map((d) => [d.id, d.kind, d.attempts, short(errorText(d.last_error), 50), d.resolution ?? "open", when(d.last_failed_at)]),
      ) + more(page.cursor),
    );
  },
};

export const deadLettersShow: Command = {
  name: "dead-letters show",
  args: ["id"],
  summary: "One dead letter, with what its execution was given (payload).",
  options: app,
  async run(r) {
    const d = await r.api.get<DeadLetter>(`${base(r)}/${seg(r.arg(0)!)}`);
    r.print(d, describe(d));
  },
};

export const deadLettersReplay: Command = {
  name: "dead-letters replay",
  args: ["id"],
  summary: "Run a dead letter's execution again (a new execution with its trigger's retry policy); the dead letter is marked replayed.",
  options: app,
  async run(r) {
    const d = await r.api.post<DeadLetter>(`${base(r)}/${seg(r.arg(0)!)}/replay`);
    r.print(d, `${describe(d)}\n\nfollow it: picloud logs ${d.replay_execution_id} --wait`);
  },
};

export const deadLettersResolve: Command = {
  name: "dead-letters resolve",
  args: ["id"],
  summary: "Mark a dead letter as dealt with (resolution ignored): it leaves the unresolved count.",
  options: app,
  async run(r) {
    const d = await r.api.post<DeadLetter>(`${base(r)}/${seg(r.arg(0)!)}/resolve`);
    r.print(d, describe(d));
  },
};

function describe(d: DeadLetter): string {
  return fields([
    ["dead letter", d.id],
    ["resolution", d.resolution ?? "open"],
    ["kind", d.kind],
    ["execution", d.execution_id],
    ["script", d.script_id],
    ["trigger", d.trigger_id ?? undefined],
    ["route", d.route_id ?? undefined],
    ["attempts", d.attempts],
    ["last error", errorText(d.last_error)],
    ["handler error", d.handler_error ? errorText(d.handler_error) : undefined],
    ["first failed", when(d.first_failed_at)],
    ["last failed", when(d.last_failed_at)],
    ["replayed as", d.replay_execution_id ?? undefined],
    ["payload", short(d.payload, 200)],
  ]);
}
