// App roles, ordered: viewer reads; editor writes scripts and routes and runs them;
// app_admin manages members and triggers. The instance owner may do everything everywhere.
export const ROLES = ["viewer", "editor", "app_admin"] as const;
export type Role = (typeof ROLES)[number];

export const roleAtLeast = (have: Role, need: Role) => ROLES.indexOf(have) >= ROLES.indexOf(need);

/**
 * The role each kind of app action needs. The admin API and the dashboard both check these, so a
 * button the dashboard shows is one the API would also allow.
 */
export const NEEDS = {
  /** see the app and everything in it */
  read: "viewer",
  /** create, change and delete scripts and routes; write KV; run scripts directly */
  edit: "editor",
  /** create, enable, disable and delete triggers */
  triggers: "app_admin",
  /** add, change and remove members */
  members: "app_admin",
  /** replay and resolve dead letters (the same right the dead_letters SDK needs) */
  deadLetters: "app_admin",
  /** rename and delete the app */
  app: "app_admin",
} as const satisfies Record<string, Role>;

/** Whether one holding `role` on an app (the instance owner: "owner") may do what needs `need`. */
export const may = (role: Role | "owner", need: Role) => role === "owner" || roleAtLeast(role, need);
