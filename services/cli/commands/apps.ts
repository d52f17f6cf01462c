import { PAGE_OPTIONS, pageQuery, type Command } from "../command.ts";
import { fields, more, table, when } from "../output.ts";

type App = { id: string; slug: string; name: string; role?: string; created_at: string };

export const appsList: Command = {
  name: "apps list",
  summary: "The apps you are a member of (the owner sees all).",
  options: PAGE_OPTIONS,
  async run(r) {
    const page = await r.api.get<{ items: App[]; cursor: string | null }>(`/admin/apps${pageQuery(r)}`);
    r.print(page, table(["slug", "name", "role", "id", "created"], page.items.map((a) => [a.slug, a.name, a.role, a.id, when(a.created_at)])) + more(page.cursor));
  },
};

export const appsCreate: Command = {
  name: "apps create",
  args: ["slug"],
  summary: "Create an app (you become its app_admin). The slug is 1-63 characters of a-z, 0-9 and -.",
  options: { name: { type: "string", help: "display name (default: the slug)" } },
  async run(r) {
    const slug = r.arg(0)!;
    const app = await r.api.post<App>("/admin/apps", { slug, name: r.opt("name") ?? slug });
    r.print(app, fields([["created app", app.slug], ["name", app.name], ["id", app.id]]));
  },
};
