// logs: one execution — its status, timings, what it answered or how it failed, and the
// console lines the script wrote. --wait follows a queued or running one until it ends.
import { seg } from "../client.ts";
import { integer, type Command, type Run } from "../command.ts";
import { CliError, EXIT } from "../errors.ts";
import { fields, when } from "../output.ts";

type LogLine = { level: string; message: string; at: string };
type Execution = {
  id: string;
  app_id: string;
  script_id: string | null;
  kind: string;
  status: "queued" | "running" | "succeeded" | "failed";
  attempts: number;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  response: { status: number; headers?: Record<string, string>; body: string } | null;
  error: { code: string; message: string } | null;
  logs: LogLine[] | null;
};

const finished = (e: Execution) => e.status === "succeeded" || e.status === "failed";

export const logs: Command = {
  name: "logs",
  args: ["execution-id"],
  summary: "An execution: status, duration, result or error, and its console lines. The id is in a route's 202 answer, a dead letter, or a sync error's body.",
  options: {
    wait: { type: "boolean", help: "if it is still queued or running, wait until it ends" },
    timeout: { type: "string", value: "secs", help: "how long --wait waits (default 30)" },
  },
  async run(r) {
    const id = r.arg(0)!;
    const timeoutS = integer(r, "timeout", 1, 3600) ?? 30;
    const get = () => r.api.get<Execution>(`/admin/executions/${seg(id)}`);
    let e = await get();
    if (r.flag("wait")) {
      const until = Date.now() + timeoutS * 1000;
      while (!finished(e)) {
        if (Date.now() > until) throw new CliError(EXIT.api, `execution ${id} is still ${e.status} after ${timeoutS} s`);
        await new Promise((res) => setTimeout(res, 200));
        e = await get();
      }
    }
    r.print(e, r.json ? "" : describe(e, await scriptName(r, e.script_id)));
  },
};

/** The script's name for a person; its id alone when it is gone or hidden. */
async function scriptName(r: Run, id: string | null): Promise<string | null> {
  if (!id) return null;
  const s = await r.api.get<{ name: string }>(`/admin/scripts/${seg(id)}`).catch(() => null);
  return s ? `${s.name} (${id})` : id;
}

function describe(e: Execution, script: string | null): string {
  const result = e.response ? (e.response.body ? `${e.response.status} ${e.response.body}` : `${e.response.status} (no body)`) : undefined;
  const head = fields([
    ["execution", e.id],
    ["status", e.status],
    ["kind", e.kind],
    ["script", script],
    ["attempts", e.attempts],
    ["queued", when(e.queued_at)],
    ["finished", e.finished_at ? when(e.finished_at) : undefined],
    ["duration", e.duration_ms === null ? undefined : `${e.duration_ms} ms`],
    ["result", result],
    ["error", e.error ? `${e.error.code}: ${e.error.message}` : undefined],
  ]);
  const lines = e.logs ?? [];
  if (!lines.length) return `${head}\nconsole    (none)`;
  return `${head}\nconsole:\n${lines.map((l) => `  ${when(l.at)}  ${l.level.padEnd(5)}  ${l.message}`).join("\n")}`;
}
