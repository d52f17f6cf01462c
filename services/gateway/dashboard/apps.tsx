// The apps list: the caller's apps (the owner: all), each with its unresolved dead-letter count
// as a red badge (hidden at 0). Two queries: the page of apps, then the counts of all of them.
import { Hono } from "hono";
import { listApps } from "../../../lib/apps/index.ts";
import { countUnresolvedByApp } from "../../../lib/dead-letters/index.ts";
import { page, withScope } from "../admin/http.ts";
import type { GatewayDeps } from "../deps.ts";
import { appPath, Badge, Empty, Page, Pager, Scroll } from "./layout.tsx";
import { BASE, type DashEnv } from "./session.ts";

export function appsPage({ db }: GatewayDeps): Hono<DashEnv> {
  const pages = new Hono<DashEnv>();

  pages.get("/", async (c) => {
    const who = withScope(c.get("principal"), "read");
    const p = page(c);
    const apps = await listApps(db, who, p);
    const counts = await countUnresolvedByApp(
      db,
      apps.items.map((a) => a.id),
    );
    return c.html(
      <Page title="Apps" who={who} csrf={c.get("csrf")}>
        {apps.items.length === 0 ? (
          <Empty>No apps yet. Create one with the admin API (POST /api/v1/admin/apps) or the CLI.</Empty>
        ) : (
          <Scroll>
            <table class="apps">
              <thead>
                <tr>
                  <th>App</th>
                  <th>Slug</th>
                  <th>Your role</th>
                  <th>Dead letters</th>
                </tr>
              </thead>
              <tbody>
                {apps.items.map((a) => (
                  <tr data-app={a.slug}>
                    <td>
                      <a href={appPath(a.slug)}>{a.name}</a>
                    </td>
                    <td>
                      <code>{a.slug}</code>
                    </td>
                    <td>{a.role}</td>
                    <td>
                      <a href={appPath(a.slug, "/dead-letters")} class="quiet">
                        <Badge slug={a.slug} n={counts.get(a.id) ?? 0} />
                        {(counts.get(a.id) ?? 0) === 0 && <span class="muted">none open</span>}
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Scroll>
        )}
        <Pager base={BASE} cursor={apps.cursor} at={p.cursor} />
      </Page>,
    );
  });

  return pages;
}
