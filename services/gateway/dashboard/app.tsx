// An app's page: its scripts, routes (sync/async), triggers (kv and dead-letter, enable/disable,
// create, delete) and members. One query per list, run together. Trigger actions live here too.
import { Hono } from "hono";
import { listMembers, type AppAccess } from "../../../lib/apps/index.ts";
import { may, NEEDS } from "../../../lib/auth/roles.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import type { Config } from "../../../lib/config.ts";
import type { Db } from "../../../lib/db/pool.ts";
import { countUnresolved } from "../../../lib/dead-letters/index.ts";
import { DomainError } from "../../../lib/errors.ts";
import { listAppRoutes } from "../../../lib/routes/index.ts";
import { listScripts } from "../../../lib/scripts/index.ts";
import { createTrigger, deleteTrigger, effectivePolicy, KV_OPS, listTriggers, setTriggerEnabled, type Trigger } from "../../../lib/triggers/index.ts";
import { parse } from "../admin/http.ts";
import { newDeadLetterTrigger, newKvTrigger } from "../admin/triggers.ts";
import type { GatewayDeps } from "../deps.ts";
import { appFor } from "./access.ts";
import { Action, appPath, Csrf, Empty, FormError, Page, routeText, Scroll, scriptPath } from "./layout.tsx";
import { formOf, optionalInt } from "./forms.ts";
import type { DashContext, DashEnv } from "./session.ts";

const LIST = { limit: 200 };

export function appPages(deps: GatewayDeps): Hono<DashEnv> {
  const { db, config } = deps;
  const pages = new Hono<DashEnv>();

  pages.get("/apps/:app", async (c) => {
    const { who, app } = await appFor(c, db);
    return c.html(await appPage(c, db, config, who, app, {}));
  });

  const base = "/apps/:app/triggers";
  const afterTrigger = (c: DashContext, app: AppAccess) => c.redirect(`${appPath(app.slug)}#triggers`, 303);

  pages.post(`${base}/kv`, async (c) => {
    const { who, app } = await appFor(c, db, NEEDS.triggers);
    const form = await formOf(c);
    try {
      const max = optionalInt(form, "max_attempts");
      const input = parse(newKvTrigger, { script_id: form.str("script_id"), collection_glob: form.str("collection_glob"), ops: form.all("ops"), retry: max === undefined ? undefined : { max_attempts: max } });
      await createTrigger(db, app.id, who.userId, { kind: "kv", scriptId: input.script_id, collectionGlob: input.collection_glob, ops: input.ops, retry: input.retry });
    } catch (err) {
      if (err instanceof DomainError) return c.html(await appPage(c, db, config, who, app, { trigger: err.message }), 400);
      throw err;
    }
    return afterTrigger(c, app);
  });

  pages.post(`${base}/dead_letter`, async (c) => {
    const { who, app } = await appFor(c, db, NEEDS.triggers);
    const form = await formOf(c);
    try {
      const input = parse(newDeadLetterTrigger, { script_id: form.str("script_id") });
      await createTrigger(db, app.id, who.userId, { kind: "dead_letter", scriptId: input.script_id });
    } catch (err) {
      if (err instanceof DomainError) return c.html(await appPage(c, db, config, who, app, { trigger: err.message }), 400);
      throw err;
    }
    return afterTrigger(c, app);
  });

  for (const [action, enabled] of [["enable", true], ["disable", false]] as const) {
    pages.post(`${base}/:id/${action}`, async (c) => {
      const { app } = await appFor(c, db, NEEDS.triggers);
      await setTriggerEnabled(db, app.id, c.req.param("id"), enabled);
      return afterTrigger(c, app);
    });
  }

  pages.post(`${base}/:id/delete`, async (c) => {
    const { app } = await appFor(c, db, NEEDS.triggers);
    await deleteTrigger(db, app.id, c.req.param("id"));
    return afterTrigger(c, app);
  });

  return pages;
}

type Errors = { trigger?: string };

async function appPage(c: DashContext, db: Db, config: Config, who: Principal, app: AppAccess, errors: Errors) {
  const [scripts, routes, triggers, members, unresolved] = await Promise.all([
    listScripts(db, app.id, LIST),
    listAppRoutes(db, app.id, LIST),
    listTriggers(db, app.id, LIST),
    listMembers(db, app.id, LIST),
    countUnresolved(db, app.id),
  ]);
  const names = new Map(scripts.items.map((s) => [s.id, s.name]));
  const csrf = c.get("csrf");
  const canEdit = may(app.role, NEEDS.edit);
  const canTrigger = may(app.role, NEEDS.triggers);
  const scriptLink = (id: string) => <a href={scriptPath(app.slug, id)}>{names.get(id) ?? id.slice(0, 8)}</a>;
  const scriptOptions = scripts.items.map((s) => <option value={s.id}>{s.name}</option>);
  return (
    <Page title={app.name} who={who} csrf={csrf} app={app} unresolved={unresolved} tab="app">
      <p class="muted">
        <code>{app.slug}</code> · your role: {app.role}
      </p>

      <section class="card" id="scripts">
        <h2>Scripts</h2>
        {scripts.items.length === 0 ? (
          <Empty>No scripts yet.</Empty>
        ) : (
          <Scroll>
            <table>
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Version</th>
                  <th>Timeout</th>
                  <th>Memory</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {scripts.items.map((s) => (
                  <tr>
                    <td>{scriptLink(s.id)}</td>
                    <td>{s.version}</td>
                    <td>{s.timeout_ms} ms</td>
                    <td>{s.memory_mb} MB</td>
                    <td>{s.updated_at.slice(0, 19).replace("T", " ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        {canEdit && (
          <p>
            <a href={appPath(app.slug, "/scripts/new")}>New script</a>
          </p>
        )}
      </section>

      <section class="card" id="routes">
        <h2>Routes</h2>
        {routes.items.length === 0 ? (
          <Empty>No routes. Add one from a script's page.</Empty>
        ) : (
          <Scroll>
            <table>
              <thead>
                <tr>
                  <th>Route</th>
                  <th>Match</th>
                  <th>Mode</th>
                  <th>Script</th>
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
                    <td>{scriptLink(r.script_id)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
      </section>

      <section class="card" id="triggers">
        <h2>Triggers</h2>
        {triggers.items.length === 0 ? (
          <Empty>No triggers.</Empty>
        ) : (
          <Scroll>
            <table>
              <thead>
                <tr>
                  <th>Kind</th>
                  <th>On</th>
                  <th>Script</th>
                  <th>Retry</th>
                  <th>State</th>
                  {canTrigger && <th>Actions</th>}
                </tr>
              </thead>
              <tbody>
                {triggers.items.map((t) => (
                  <TriggerRow t={t} config={config} slug={app.slug} csrf={csrf} canTrigger={canTrigger} script={scriptLink(t.script_id)} />
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        {canTrigger && scripts.items.length > 0 && (
          <>
            <FormError message={errors.trigger} />
            <form method="post" action={appPath(app.slug, "/triggers/kv")} class="row">
              <Csrf token={csrf} />
              <label>
                KV trigger: script <select name="script_id">{scriptOptions}</select>
              </label>
              <label>
                collections <input name="collection_glob" value="*" size={10} />
              </label>
              <span>
                {KV_OPS.map((op) => (
                  <label class="inline-check">
                    <input type="checkbox" name="ops" value={op} checked={op !== "delete"} /> {op}
                  </label>
                ))}
              </span>
              <label>
                max attempts <input name="max_attempts" type="number" min="1" max="100" size={4} />
              </label>
              <button type="submit">Add KV trigger</button>
            </form>
            <form method="post" action={appPath(app.slug, "/triggers/dead_letter")} class="row">
              <Csrf token={csrf} />
              <label>
                Dead-letter trigger: script <select name="script_id">{scriptOptions}</select>
              </label>
              <button type="submit">Add dead-letter trigger</button>
            </form>
          </>
        )}
      </section>

      <section class="card" id="members">
        <h2>Members</h2>
        <Scroll>
          <table>
            <thead>
              <tr>
                <th>Email</th>
                <th>Role</th>
                <th>Since</th>
              </tr>
            </thead>
            <tbody>
              {members.items.map((m) => (
                <tr>
                  <td>{m.email}</td>
                  <td>{m.role}</td>
                  <td>{m.created_at.slice(0, 10)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
        <p class="muted">Members are managed with the admin API (PUT /api/v1/admin/apps/{app.slug}/members/&#123;user_id&#125;).</p>
      </section>
    </Page>
  );
}

function TriggerRow(p: { t: Trigger; config: Config; slug: string; csrf: string | undefined; canTrigger: boolean; script: unknown }) {
  const { t } = p;
  const policy = effectivePolicy(t.retry, p.config);
  const at = appPath(p.slug, `/triggers/${t.id}`);
  return (
    <tr data-trigger={t.id}>
      <td>{t.kind === "kv" ? "kv" : "dead letter"}</td>
      <td>{t.kind === "kv" ? `${t.collection_glob} (${(t.ops ?? []).join(", ")})` : "each new dead letter"}</td>
      <td>{p.script as never}</td>
      <td>
        {policy.max_attempts}× {policy.backoff} {policy.base_ms} ms
      </td>
      <td>{t.enabled ? "enabled" : <span class="muted">disabled</span>}</td>
      {p.canTrigger && (
        <td>
          {t.enabled ? <Action action={`${at}/disable`} label="Disable" csrf={p.csrf} cls="secondary" /> : <Action action={`${at}/enable`} label="Enable" csrf={p.csrf} />}
          <Action action={`${at}/delete`} label="Delete" csrf={p.csrf} cls="danger" confirm="Delete this trigger?" />
        </td>
      )}
    </tr>
  );
}
