// App roles, ordered: viewer reads; editor writes scripts and routes and runs them;
// app_admin manages members and triggers. The instance owner may do everything everywhere.
export const ROLES = ["viewer", "editor", "app_admin"] as const;
export type Role = (typeof ROLES)[number];

export const roleAtLeast = (have: Role, need: Role) => ROLES.indexOf(have) >= ROLES.indexOf(need);
