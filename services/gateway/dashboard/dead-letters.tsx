// Dead letters of an app: the table (filter by resolution, paged), a row's detail (payload and
// error history, fetched when the row is expanded, or as its own page without JavaScript), and
// Replay / Mark resolved. The actions answer JSON to the page's script (which updates the row
// and the badges in place) and redirect back for a plain form post.
import { Hono } from "hono";
import { may, NEEDS } from "../../../lib/auth/roles.ts";
import {
  countUnresolved,
  deadLetterLineage,
  getDeadLetter,
  listDeadLetters,
  parseResolution,
  RESOLUTION_FILTERS,
  replayDeadLetter,
  resolveDeadLetter,
  type DeadLetter,
} from "../../../lib/dead-letters/index.ts";
import { scriptNames } from "../../../lib/scripts/index.ts";
import { listTriggers, type Trigger } from "../../../lib/triggers/index.ts";
import { page } from "../admin/http.ts";
import type { GatewayDeps } from "../deps.ts";
import { appFor } from "./access.ts";
import { Action, appPath, Empty, errorText, Json, Page, Pager, Scroll, shortId, Time } from "./layout.tsx";
import { wantsJson, type DashEnv } from "./session.ts";

const triggerText = (t: Trigger | undefined, id: string | null) =>
  t ? (t.kind === "kv" ? `kv ${t.collection_glob} (${(t.ops ?? []).join(", ")})` : "dead letter") : id ? `deleted trigger ${shortId(id)}` : "—";
const resolutionText = (d: DeadLetter) => d.resolution ?? "open";

export function deadLetterPages({ db, config }: GatewayDeps): Hono<DashEnv> {
  const pages = new Hono<DashEnv>();
  const base = "/apps/:app/dead-letters";

  pages.get(base, async (c) => {
    const { who, app } = await appFor(c, db);
    const resolution = parseResolution(c.req.query("resolution"));
    const p = page(c);
    const [list, unresolved, triggers] = await Promise.all([
      listDeadLetters(db, app.id, { ...p, resolution }),
      countUnresolved(db, app.id),
      listTriggers(db, app.id, { limit: 200 }),
    ]);
    const names = await scriptNames(
      db,
      app.id,
      list.items.map((d) => d.script_id),
    );
    const byId = new Map(triggers.items.map((t) => [t.id, t]));
    const canAct = may(app.role, NEEDS.deadLetters);
    const csrf = c.get("csrf");
    const here = appPath(app.slug, "/dead-letters");
    return c.html(
      <Page title={`Dead letters of ${app.name}`} who={who} csrf={csrf} app={app} unresolved={unresolved} tab="dead-letters">
        <form method="get" action={here} class="filters">
          <label>
            Resolution{" "}
            <select name="resolution">
              <option value="all" selected={resolution === undefined}>
                all
              </option>
              {RESOLUTION_FILTERS.map((r) => (
                <option value={r} selected={resolution === r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <button type="submit">Filter</button>
        </form>
        {!canAct && <p class="muted">You are {app.role} here: replaying and resolving need the app_admin role.</p>}
        {list.items.length === 0 ? (
          <Empty>No dead letters{resolution ? ` (${resolution})` : ""}.</Empty>
        ) : (
          <Scroll>
            <table class="dead-letters">
              <thead>
                <tr>
                  <th></th>
                  <th>Time</th>
                  <th>Trigger</th>
                  <th>Script</th>
                  <th>Attempts</th>
                  <th>Last error</th>
                  <th>Resolution</th>
                  <th>Actions</th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((d) => (
                  <>
                    <tr data-dead-letter={d.id}>
                      <td>
                        <a href={`${here}/${d.id}`} class="expand" data-expand={`${here}/${d.id}?fragment=1`} aria-expanded="false" title="show payload and error history">
                          ▸
                        </a>
                      </td>
                      <td>
                        <Time at={d.last_failed_at} />
                      </td>
                      <td>{triggerText(d.trigger_id ? byId.get(d.trigger_id) : undefined, d.trigger_id)}</td>
                      <td>{d.script_id ? (names.get(d.script_id) ?? shortId(d.script_id)) : <span class="muted">deleted</span>}</td>
                      <td>
                        {d.attempts}/{d.max_attempts}
                      </td>
                      <td class="error">{errorText(d.last_error)}</td>
                      <td data-field="resolution" class={`resolution ${d.resolution ?? "open"}`}>
                        {resolutionText(d)}
                      </td>
                      <td class="actions" data-field="actions">
                        <RowActions d={d} here={here} canAct={canAct} csrf={csrf} />
                      </td>
                    </tr>
                    <tr class="detail" data-detail-of={d.id} hidden>
                      <td colspan={8}></td>
                    </tr>
                  </>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        <Pager base={here} query={{ resolution: c.req.query("resolution") }} cursor={list.cursor} at={p.cursor} />
      </Page>,
    );
  });

  pages.get(`${base}/:id`, async (c) => {
    const { who, app } = await appFor(c, db);
    const d = await getDeadLetter(db, app.id, c.req.param("id"));
    const [lineage, names] = await Promise.all([d.root_execution_id ? deadLetterLineage(db, app.id, d.root_execution_id) : [d], scriptNames(db, app.id, [d.script_id])]);
    const detail = <Detail d={d} lineage={lineage} slug={app.slug} />;
    if (c.req.query("fragment")) return c.html(detail);
    const canAct = may(app.role, NEEDS.deadLetters);
    const here = appPath(app.slug, "/dead-letters");
    return c.html(
      <Page title={`Dead letter ${shortId(d.id)}`} who={who} csrf={c.get("csrf")} app={app} unresolved={await countUnresolved(db, app.id)} tab="dead-letters">
        <div data-dead-letter={d.id}>
          <p>
            Script {d.script_id ? (names.get(d.script_id) ?? shortId(d.script_id)) : "deleted"} · {d.attempts}/{d.max_attempts} attempts ·{" "}
            <span data-field="resolution" class={`resolution ${d.resolution ?? "open"}`}>
              {resolutionText(d)}
            </span>
          </p>
          <p class="actions" data-field="actions">
            <RowActions d={d} here={here} canAct={canAct} csrf={c.get("csrf")} />
          </p>
        </div>
        {detail}
      </Page>,
    );
  });

  const act = (verb: "replay" | "resolve") =>
    pages.post(`${base}/:id/${verb}`, async (c) => {
      const { who, app } = await appFor(c, db, NEEDS.deadLetters);
      const id = c.req.param("id");
      const d = verb === "replay" ? await replayDeadLetter(db, app.id, id, { by: who.userId, config }) : await resolveDeadLetter(db, app.id, id, who.userId);
      if (!wantsJson(c)) return c.redirect(appPath(app.slug, "/dead-letters"), 303);
      return c.json({ dead_letter: d, unresolved: await countUnresolved(db, app.id) });
    });
  act("replay");
  act("resolve");

  return pages;
}

/** Replay and Mark resolved for an open dead letter the caller may act on; otherwise nothing to click. */
function RowActions(p: { d: DeadLetter; here: string; canAct: boolean; csrf: string | undefined }) {
  const { d } = p;
  if (d.resolution === "replayed" || d.resolution === "ignored") {
    return d.replay_execution_id ? <span class="muted">replay {shortId(d.replay_execution_id)}</span> : <span class="muted">—</span>;
  }
  if (!p.canAct) return <span class="muted">—</span>;
  return (
    <>
      <Action action={`${p.here}/${d.id}/replay`} label="Replay" csrf={p.csrf} js="dead-letter" />
      <Action action={`${p.here}/${d.id}/resolve`} label="Mark resolved" csrf={p.csrf} js="dead-letter" cls="secondary" />
    </>
  );
}

/** The payload and the error history: this dead letter's errors and those of earlier ones in its lineage (replays). */
function Detail(p: { d: DeadLetter; lineage: readonly DeadLetter[]; slug: string }) {
  const { d } = p;
  const executions = appPath(p.slug, "/executions");
  return (
    <div class="detail-body">
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{d.kind}</dd>
        <dt>Failed execution</dt>
        <dd>
          <a href={`${executions}/${d.execution_id}`}>{shortId(d.execution_id)}</a>
        </dd>
        <dt>Lineage (root)</dt>
        <dd>{d.root_execution_id ? <a href={`${executions}/${d.root_execution_id}`}>{shortId(d.root_execution_id)}</a> : "—"}</dd>
        <dt>Depth</dt>
        <dd>{d.trigger_depth}</dd>
        <dt>First / last failure</dt>
        <dd>
          <Time at={d.first_failed_at} /> / <Time at={d.last_failed_at} />
        </dd>
        {d.replay_execution_id && (
          <>
            <dt>Replayed as</dt>
            <dd>
              <a href={`${executions}/${d.replay_execution_id}`}>{shortId(d.replay_execution_id)}</a>
            </dd>
          </>
        )}
      </dl>
      <h3>Payload</h3>
      <Json value={d.payload} />
      <h3>Error history</h3>
      <ol class="history">
        {p.lineage.map((x) => (
          <li class={x.id === d.id ? "this" : ""}>
            <Time at={x.last_failed_at} /> · {x.kind} · {x.attempts} attempts · {x.resolution ?? "open"}
            {x.id === d.id ? " (this one)" : ""}
            <pre class="error">{errorText(x.last_error)}</pre>
            {x.handler_error !== null && x.handler_error !== undefined && <pre class="error">dead-letter handler: {errorText(x.handler_error)}</pre>}
          </li>
        ))}
      </ol>
      {typeof d.last_error === "object" && d.last_error !== null && "stack" in d.last_error && (
        <>
          <h3>Stack</h3>
          <pre class="error">{String((d.last_error as { stack: unknown }).stack)}</pre>
        </>
      )}
    </div>
  );
}
