// The KV browser: an app's collections (with live key counts), a collection's keys (by prefix,
// paged), one key's value. Read-only: writes go through scripts or the admin API, where they
// fire triggers. Collection and key travel percent-encoded in the path, as in the admin API.
import { Hono } from "hono";
import { countUnresolved } from "../../../lib/dead-letters/index.ts";
import { NotFoundError } from "../../../lib/errors.ts";
import { collectionProblem, getEntry, keyProblem, listCollections, listKeys, prefixProblem } from "../../../lib/kv/index.ts";
import { page } from "../admin/http.ts";
import { named } from "../admin/kv.ts";
import type { GatewayDeps } from "../deps.ts";
import { appFor } from "./access.ts";
import { appPath, Empty, Json, Page, Pager, Scroll, Time } from "./layout.tsx";
import type { DashEnv } from "./session.ts";

export function kvPages({ db }: GatewayDeps): Hono<DashEnv> {
  const pages = new Hono<DashEnv>();
  const kvPath = (slug: string, collection?: string, key?: string) =>
    appPath(slug, `/kv${collection === undefined ? "" : `/${encodeURIComponent(collection)}`}${key === undefined ? "" : `/keys/${encodeURIComponent(key)}`}`);

  pages.get("/apps/:app/kv", async (c) => {
    const { who, app } = await appFor(c, db);
    const p = page(c);
    const [list, unresolved] = await Promise.all([listCollections(db, app.id, p), countUnresolved(db, app.id)]);
    return c.html(
      <Page title={`KV of ${app.name}`} who={who} csrf={c.get("csrf")} app={app} unresolved={unresolved} tab="kv">
        {list.items.length === 0 ? (
          <Empty>No keys stored.</Empty>
        ) : (
          <Scroll>
            <table>
              <thead>
                <tr>
                  <th>Collection</th>
                  <th>Keys</th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((col) => (
                  <tr>
                    <td>
                      <a href={kvPath(app.slug, col.name)}>{col.name}</a>
                    </td>
                    <td>{col.keys}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        <Pager base={kvPath(app.slug)} cursor={list.cursor} at={p.cursor} />
      </Page>,
    );
  });

  pages.get("/apps/:app/kv/:collection", async (c) => {
    const { who, app } = await appFor(c, db);
    const collection = named("collection", c.req.param("collection"), collectionProblem);
    const prefix = named("prefix", c.req.query("prefix") ?? "", prefixProblem);
    const p = page(c);
    const [list, unresolved] = await Promise.all([listKeys(db, app.id, collection, { ...p, prefix }), countUnresolved(db, app.id)]);
    const here = kvPath(app.slug, collection);
    return c.html(
      <Page title={`Collection ${collection}`} who={who} csrf={c.get("csrf")} app={app} unresolved={unresolved} tab="kv">
        <p>
          <a href={kvPath(app.slug)}>« All collections</a>
        </p>
        <form method="get" action={here} class="filters">
          <label>
            Key prefix <input name="prefix" value={prefix} />
          </label>
          <button type="submit">Filter</button>
        </form>
        {list.items.length === 0 ? (
          <Empty>No keys{prefix ? " with this prefix" : ""}.</Empty>
        ) : (
          <Scroll>
            <table class="keys">
              <thead>
                <tr>
                  <th>Key</th>
                  <th>Bytes</th>
                  <th>Expires</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {list.items.map((k) => (
                  <tr>
                    <td>
                      <a href={kvPath(app.slug, collection, k.key)}>{k.key}</a>
                    </td>
                    <td>{k.bytes}</td>
                    <td>
                      <Time at={k.expires_at} />
                    </td>
                    <td>
                      <Time at={k.updated_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        <Pager base={here} query={{ prefix }} cursor={list.cursor} at={p.cursor} />
      </Page>,
    );
  });

  pages.get("/apps/:app/kv/:collection/keys/:key", async (c) => {
    const { who, app } = await appFor(c, db);
    const collection = named("collection", c.req.param("collection"), collectionProblem);
    const entry = await getEntry(db, app.id, collection, named("key", c.req.param("key"), keyProblem));
    if (!entry) throw new NotFoundError("key");
    return c.html(
      <Page title={`${collection} / ${entry.key}`} who={who} csrf={c.get("csrf")} app={app} unresolved={await countUnresolved(db, app.id)} tab="kv">
        <p>
          <a href={kvPath(app.slug, collection)}>« {collection}</a>
        </p>
        <dl class="facts">
          <dt>Bytes</dt>
          <dd>{entry.bytes}</dd>
          <dt>Expires</dt>
          <dd>
            <Time at={entry.expires_at} />
          </dd>
          <dt>Created / updated</dt>
          <dd>
            <Time at={entry.created_at} /> / <Time at={entry.updated_at} />
          </dd>
        </dl>
        <h2>Value</h2>
        <Json value={entry.value} />
      </Page>,
    );
  });

  return pages;
}
