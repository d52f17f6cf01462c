// Access to the things that hang off an app (scripts, routes): load the row, then the one app
// access check. Whatever belongs to an app the caller is not a member of is "not found".
import { appAccess, type AppAccess } from "../../../lib/apps/index.ts";
import type { Role } from "../../../lib/auth/roles.ts";
import type { Principal } from "../../../lib/auth/tokens.ts";
import type { Db } from "../../../lib/db/pool.ts";
import { getRoute, type Route } from "../../../lib/routes/index.ts";
import { getScript, type Script } from "../../../lib/scripts/index.ts";

export async function scriptAccess(db: Db, who: Principal, id: string, need: Role): Promise<{ script: Script; app: AppAccess }> {
  const script = await getScript(db, id);
  return { script, app: await appAccess(db, who, { id: script.app_id }, need, "script") };
}

export async function routeAccess(db: Db, who: Principal, id: string, need: Role): Promise<{ route: Route; app: AppAccess }> {
  const route = await getRoute(db, id);
  return { route, app: await appAccess(db, who, { id: route.app_id }, need, "route") };
}
