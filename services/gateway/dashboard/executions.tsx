// Executions of an app: the recent ones (status, duration, depth, lineage root), one execution
// with its console lines and its lineage, and the abandoned sync executions.
import { Hono } from "hono";
import { countUnresolved } from "../../../lib/dead-letters/index.ts";
import { NotFoundError } from "../../../lib/errors.ts";
import { listAbandoned } from "../../../lib/executions/abandoned.ts";
import { getExecution, listExecutions, listLineage, type Execution } from "../../../lib/executions/index.ts";
import type { LogLine } from "../../../lib/executor/index.ts";
import { scriptNames } from "../../../lib/scripts/index.ts";
import { page } from "../admin/http.ts";
import type { GatewayDeps } from "../deps.ts";
import { appFor } from "./access.ts";
import { appPath, Empty, errorText, Json, Page, Pager, Scroll, scriptPath, shortId, Time } from "./layout.tsx";
import type { DashEnv } from "./session.ts";

const STATUSES = ["queued", "running", "succeeded", "failed"];
type Listed = Omit<Execution, "logs" | "response">;

export function executionPages(deps: GatewayDeps): Hono<DashEnv> {
  const { db } = deps;
  const pages = new Hono<DashEnv>();

  pages.get("/apps/:app/executions", async (c) => {
    const { who, app } = await appFor(c, db);
    const status = c.req.query("status") || undefined;
    const p = page(c);
    const [list, unresolved] = await Promise.all([listExecutions(db, app.id, { ...p, status }), countUnresolved(db, app.id)]);
    const names = await scriptNames(
      db,
      app.id,
      list.items.map((e) => e.script_id),
    );
    const here = appPath(app.slug, "/executions");
    return c.html(
      <Page title={`Executions of ${app.name}`} who={who} csrf={c.get("csrf")} app={app} unresolved={unresolved} tab="executions">
        <form method="get" action={here} class="filters">
          <label>
            Status{" "}
            <select name="status">
              <option value="">all</option>
              {STATUSES.map((s) => (
                <option value={s} selected={status === s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Filter</button>
        </form>
        {list.items.length === 0 ? <Empty>No executions{status ? ` (${status})` : ""}.</Empty> : <ExecutionTable rows={list.items} names={names} slug={app.slug} />}
        <Pager base={here} query={{ status }} cursor={list.cursor} at={p.cursor} />
      </Page>,
    );
  });

  pages.get("/apps/:app/executions/:id", async (c) => {
    const { who, app } = await appFor(c, db);
    const id = c.req.param("id");
    const e = (await getExecution(db, id)) ?? (await deps.pendingExecution?.(id)) ?? null;
    if (!e || e.app_id !== app.id) throw new NotFoundError("execution");
    const root = e.root_execution_id ?? e.id;
    const [lineage, unresolved] = await Promise.all([listLineage(db, app.id, root), countUnresolved(db, app.id)]);
    const names = await scriptNames(db, app.id, [e.script_id, ...lineage.map((x) => x.script_id)]);
    const logs = (Array.isArray(e.logs) ? e.logs : []) as LogLine[];
    return c.html(
      <Page title={`Execution ${shortId(e.id)}`} who={who} csrf={c.get("csrf")} app={app} unresolved={unresolved} tab="executions">
        <dl class="facts">
          <dt>Status</dt>
          <dd class={`status-${e.status}`}>{e.status}</dd>
          <dt>Script</dt>
          <dd>{e.script_id ? <a href={scriptPath(app.slug, e.script_id)}>{names.get(e.script_id) ?? shortId(e.script_id)}</a> : "deleted"}</dd>
          <dt>Kind</dt>
          <dd>{e.kind}</dd>
          <dt>Attempts</dt>
          <dd>{e.attempts}</dd>
          <dt>Depth</dt>
          <dd>{e.trigger_depth}</dd>
          <dt>Root execution</dt>
          <dd>{e.root_execution_id && e.root_execution_id !== e.id ? <a href={appPath(app.slug, `/executions/${e.root_execution_id}`)}>{shortId(e.root_execution_id)}</a> : "this one"}</dd>
          <dt>Queued / started / finished</dt>
          <dd>
            <Time at={e.queued_at} /> / <Time at={e.started_at} /> / <Time at={e.finished_at} />
          </dd>
          <dt>Duration</dt>
          <dd>{e.duration_ms === null ? "—" : `${e.duration_ms} ms`}</dd>
          <dt>Id</dt>
          <dd>
            <code>{e.id}</code>
          </dd>
        </dl>
        {e.error !== null && e.error !== undefined && (
          <>
            <h2>Error</h2>
            <pre class="error">{errorText(e.error)}</pre>
          </>
        )}
        <h2>Console</h2>
        {logs.length === 0 ? (
          <Empty>No console lines.</Empty>
        ) : (
          <pre class="console">
            {logs.map((l) => (
              <span class={`log-${l.level}`}>
                {l.at} {l.level.padEnd(5)} {l.message}
                {"\n"}
              </span>
            ))}
          </pre>
        )}
        {e.response !== null && e.response !== undefined && (
          <>
            <h2>Response</h2>
            <Json value={e.response} />
          </>
        )}
        <h2>Lineage</h2>
        <ExecutionTable rows={lineage} names={names} slug={app.slug} current={e.id} />
      </Page>,
    );
  });

  pages.get("/apps/:app/abandoned", async (c) => {
    const { who, app } = await appFor(c, db);
    const p = page(c);
    const [list, unresolved] = await Promise.all([listAbandoned(db, app.id, p), countUnresolved(db, app.id)]);
    const names = await scriptNames(
      db,
      app.id,
      list.items.map((a) => a.script_id),
    );
    return c.html(
      <Page title={`Abandoned executions of ${app.name}`} who={who} csrf={c.get("csrf")} app={app} unresolved={unresolved} tab="abandoned">
        <p class="muted">Sync executions that completed after their caller stopped waiting, kept with their result.</p>
        {list.items.length === 0 ? (
          <Empty>None.</Empty>
        ) : (
          <Scroll>
            <table>
              <thead>
                <tr>
                  <th>Completed</th>
                  <th>Script</th>
                  <th>Status</th>
                  <th>Request</th>
                  <th>Result</th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((a) => (
                  <tr>
                    <td>
                      <Time at={a.completed_at} />
                    </td>
                    <td>{a.script_id ? (names.get(a.script_id) ?? shortId(a.script_id)) : "deleted"}</td>
                    <td class={`status-${a.status}`}>{a.status}</td>
                    <td>
                      <code>{requestLine(a.request)}</code>
                    </td>
                    <td class="error">{a.error ? errorText(a.error) : <span class="muted">{JSON.stringify(a.response)?.slice(0, 200)}</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        <Pager base={appPath(app.slug, "/abandoned")} cursor={list.cursor} at={p.cursor} />
      </Page>,
    );
  });

  return pages;
}

const requestLine = (r: unknown) => {
  const req = (r ?? {}) as { method?: unknown; path?: unknown };
  return `${String(req.method ?? "")} ${String(req.path ?? "")}`;
};

function ExecutionTable(p: { rows: readonly Listed[]; names: Map<string, string>; slug: string; current?: string }) {
  const link = (id: string) => appPath(p.slug, `/executions/${id}`);
  return (
    <Scroll>
      <table class="executions">
        <thead>
          <tr>
            <th>Queued</th>
            <th>Execution</th>
            <th>Script</th>
            <th>Kind</th>
            <th>Status</th>
            <th>Duration</th>
            <th>Depth</th>
            <th>Root</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.map((e) => (
            <tr class={e.id === p.current ? "this" : ""}>
              <td>
                <Time at={e.queued_at} />
              </td>
              <td>
                <a href={link(e.id)}>{shortId(e.id)}</a>
              </td>
              <td>{e.script_id ? (p.names.get(e.script_id) ?? shortId(e.script_id)) : "deleted"}</td>
              <td>{e.kind}</td>
              <td class={`status-${e.status}`}>{e.status}</td>
              <td>{e.duration_ms === null ? "—" : `${e.duration_ms} ms`}</td>
              <td>{e.trigger_depth}</td>
              <td>{e.root_execution_id && e.root_execution_id !== e.id ? <a href={link(e.root_execution_id)}>{shortId(e.root_execution_id)}</a> : <span class="muted">itself</span>}</td>
              <td class="error">{errorText(e.error)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}
