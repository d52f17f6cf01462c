// Scripts: view the source, create and edit (a source that does not compile is shown back with
// the compiler's message inline), delete; a script's routes (add with sync/async, delete).
import { Hono } from "hono";
import type { AppAccess } from "../../../lib/apps/index.ts";
import { may, NEEDS } from "../../../lib/auth/roles.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import { countUnresolved } from "../../../lib/dead-letters/index.ts";
import { DomainError, NotFoundError } from "../../../lib/errors.ts";
import { createRoute, deleteRoute, listRoutes } from "../../../lib/routes/index.ts";
import { createScript, deleteScript, updateScript, type Script } from "../../../lib/scripts/index.ts";
import { routeAccess, scriptAccess } from "../admin/access.ts";
import { parse, withScope } from "../admin/http.ts";
import { toRouteInput } from "../admin/routes.ts";
import { newScript, scriptChanges } from "../admin/scripts.ts";
import type { GatewayDeps } from "../deps.ts";
import { statusOf } from "../errors.ts";
import { appFor } from "./access.ts";
import { Action, appPath, Csrf, Empty, FormError, Page, routeText, Scroll, scriptPath } from "./layout.tsx";
import { formOf, optionalInt, type Form } from "./forms.ts";
import type { DashContext, DashEnv } from "./session.ts";

const EXAMPLE = `export default async function (ctx) {\n  return { status: 200, body: { hello: "world" } };\n}\n`;

const scriptFields = (form: Form) => ({ name: form.str("name"), source: form.str("source"), timeout_ms: optionalInt(form, "timeout_ms"), memory_mb: optionalInt(form, "memory_mb") });

export function scriptPages({ db }: GatewayDeps): Hono<DashEnv> {
  const pages = new Hono<DashEnv>();

  /** The script, checked to belong to the app in the path (another app's is "not found"). */
  const scriptIn = async (c: DashContext, need: typeof NEEDS.read | typeof NEEDS.edit) => {
    const who = withScope(c.get("principal"), need === NEEDS.read ? "read" : "write");
    const { script, app } = await scriptAccess(db, who, c.req.param("id") ?? "", need);
    if (app.slug !== c.req.param("app") && app.id !== c.req.param("app")) throw new NotFoundError("script");
    return { who, script, app };
  };

  pages.get("/apps/:app/scripts/new", async (c) => {
    const { who, app } = await appFor(c, db, NEEDS.edit);
    return c.html(<NewScript c={c} who={who} app={app} unresolved={await countUnresolved(db, app.id)} values={{ name: "", source: EXAMPLE }} />);
  });

  pages.post("/apps/:app/scripts", async (c) => {
    const { who, app } = await appFor(c, db, NEEDS.edit);
    const fields = scriptFields(await formOf(c));
    try {
      const script = await createScript(db, app.id, parse(newScript, fields));
      return c.redirect(scriptPath(app.slug, script.id), 303);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      const values = { name: fields.name ?? "", source: fields.source ?? "", timeout_ms: fields.timeout_ms, memory_mb: fields.memory_mb };
      return c.html(<NewScript c={c} who={who} app={app} unresolved={await countUnresolved(db, app.id)} values={values} error={err.message} />, statusOf(err));
    }
  });

  pages.get("/apps/:app/scripts/:id", async (c) => {
    const { who, script, app } = await scriptIn(c, NEEDS.read);
    return c.html(await scriptPage(c, who, app, script, {}));
  });

  pages.post("/apps/:app/scripts/:id", async (c) => {
    const { who, script, app } = await scriptIn(c, NEEDS.edit);
    const fields = scriptFields(await formOf(c));
    try {
      await updateScript(db, script.id, parse(scriptChanges, fields));
      return c.redirect(scriptPath(app.slug, script.id), 303);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      const edited = { ...script, source: fields.source ?? script.source };
      return c.html(await scriptPage(c, who, app, edited, { script: err.message }), statusOf(err));
    }
  });

  pages.post("/apps/:app/scripts/:id/delete", async (c) => {
    const { script, app } = await scriptIn(c, NEEDS.edit);
    await deleteScript(db, script.id);
    return c.redirect(appPath(app.slug), 303);
  });

  pages.post("/apps/:app/scripts/:id/routes", async (c) => {
    const { who, script, app } = await scriptIn(c, NEEDS.edit);
    const form = await formOf(c);
    const methods = form.all("methods");
    const host = form.str("host")?.trim();
    try {
      const input = toRouteInput({
        host_kind: form.str("host_kind") || "any",
        ...(host ? { host } : {}),
        path_kind: form.str("path_kind") || "exact",
        path: form.str("path") ?? "",
        ...(methods.length ? { methods } : {}),
        dispatch_mode: form.str("dispatch_mode") || "sync",
      });
      await createRoute(db, app.id, script.id, input);
      return c.redirect(`${scriptPath(app.slug, script.id)}#routes`, 303);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return c.html(await scriptPage(c, who, app, script, { route: err.message }), statusOf(err));
    }
  });

  pages.post("/apps/:app/routes/:id/delete", async (c) => {
    const who = withScope(c.get("principal"), "write");
    const { route, app } = await routeAccess(db, who, c.req.param("id"), NEEDS.edit);
    if (app.slug !== c.req.param("app")) throw new NotFoundError("route");
    await deleteRoute(db, route.id);
    return c.redirect(`${scriptPath(app.slug, route.script_id)}#routes`, 303);
  });

  async function scriptPage(c: DashContext, who: Principal, app: AppAccess, script: Script, errors: { script?: string; route?: string }) {
    const [routes, unresolved] = await Promise.all([listRoutes(db, script.id, { limit: 200 }), countUnresolved(db, app.id)]);
    const csrf = c.get("csrf");
    const canEdit = may(app.role, NEEDS.edit);
    const here = scriptPath(app.slug, script.id);
    return (
      <Page title={`Script ${script.name}`} who={who} csrf={csrf} app={app} unresolved={unresolved} tab="app">
        <p class="muted">
          version {script.version} · timeout {script.timeout_ms} ms · memory {script.memory_mb} MB · <code>{script.id}</code>
        </p>
        {canEdit ? (
          <form method="post" action={here} class="stack">
            <Csrf token={csrf} />
            <label>
              Source <textarea name="source" spellcheck={false}>{script.source}</textarea>
            </label>
            <FormError message={errors.script} />
            <div class="row">
              <label>
                Timeout (ms) <input name="timeout_ms" type="number" min="1" max="300000" value={String(script.timeout_ms)} />
              </label>
              <label>
                Memory (MB) <input name="memory_mb" type="number" min="1" max="1024" value={String(script.memory_mb)} />
              </label>
              <button type="submit">Save</button>
            </div>
          </form>
        ) : (
          <pre class="source">{script.source}</pre>
        )}

        <section class="card" id="routes">
          <h2>Routes</h2>
          {routes.items.length === 0 ? (
            <Empty>No routes: this script runs only from triggers or direct runs.</Empty>
          ) : (
            <Scroll>
              <table>
                <thead>
                  <tr>
                    <th>Route</th>
                    <th>Match</th>
                    <th>Mode</th>
                    {canEdit && <th></th>}
                  </tr>
                </thead>
                <tbody>
                  {routes.items.map((r) => (
                    <tr>
                      <td>
                        <code>{routeText(r)}</code>
                      </td>
                      <td>{r.path_kind}</td>
                      <td>{r.dispatch_mode}</td>
                      {canEdit && (
                        <td>
                          <Action action={appPath(app.slug, `/routes/${r.id}/delete`)} label="Delete" csrf={csrf} cls="danger" confirm="Delete this route?" />
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </Scroll>
          )}
          {canEdit && (
            <form method="post" action={`${here}/routes`} class="row">
              <Csrf token={csrf} />
              <label>
                Path <input name="path" placeholder="/hello/:name" required />
              </label>
              <label>
                Match
                <select name="path_kind">
                  <option value="exact">exact</option>
                  <option value="prefix">prefix</option>
                  <option value="pattern">pattern</option>
                </select>
              </label>
              <label>
                Mode
                <select name="dispatch_mode">
                  <option value="sync">sync</option>
                  <option value="async">async</option>
                </select>
              </label>
              <label>
                Host
                <select name="host_kind">
                  <option value="any">any</option>
                  <option value="exact">exact</option>
                  <option value="wildcard">wildcard</option>
                </select>
              </label>
              <label>
                Host name <input name="host" placeholder="api.example.com" size={14} />
              </label>
              <button type="submit">Add route</button>
            </form>
          )}
          <FormError message={errors.route} />
        </section>

        {canEdit && (
          <p>
            <Action action={`${here}/delete`} label="Delete script" csrf={csrf} cls="danger" confirm="Delete this script, its routes and its triggers?" />
          </p>
        )}
      </Page>
    );
  }

  return pages;
}

function NewScript(p: { c: DashContext; who: Principal; app: AppAccess; unresolved: number; values: { name: string; source: string; timeout_ms?: unknown; memory_mb?: unknown }; error?: string }) {
  const csrf = p.c.get("csrf");
  return (
    <Page title={`New script in ${p.app.name}`} who={p.who} csrf={csrf} app={p.app} unresolved={p.unresolved} tab="app">
      <form method="post" action={appPath(p.app.slug, "/scripts")} class="stack">
        <Csrf token={csrf} />
        <label>
          Name <input name="name" value={p.values.name} required pattern="[A-Za-z0-9_.\-]{1,100}" />
        </label>
        <label>
          Source <textarea name="source" spellcheck={false}>{p.values.source}</textarea>
        </label>
        <FormError message={p.error} />
        <div class="row">
          <label>
            Timeout (ms) <input name="timeout_ms" type="number" min="1" max="300000" placeholder="5000" value={p.values.timeout_ms === undefined ? "" : String(p.values.timeout_ms)} />
          </label>
          <label>
            Memory (MB) <input name="memory_mb" type="number" min="1" max="1024" placeholder="32" value={p.values.memory_mb === undefined ? "" : String(p.values.memory_mb)} />
          </label>
          <button type="submit">Create</button>
        </div>
      </form>
    </Page>
  );
}
