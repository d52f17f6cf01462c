// The access check of an app's dashboard page or action: the token scope, then the role on the
// app, the same pair the admin API checks (a read needs `read` and NEEDS.read; anything that
// changes something needs `write` and the action's role).
import { appAccess, type AppAccess } from "../../../lib/apps/index.ts";
import { NEEDS, type Role } from "../../../lib/auth/roles.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import type { Db } from "../../../lib/db/pool.ts";
import { withScope } from "../admin/http.ts";
import type { DashContext } from "./session.ts";

export async function appFor(c: DashContext, db: Db, need: Role = NEEDS.read): Promise<{ who: Principal; app: AppAccess }> {
  const who = withScope(c.get("principal"), need === NEEDS.read ? "read" : "write");
  return { who, app: await appAccess(db, who, { ref: c.req.param("app") ?? "" }, need) };
}
