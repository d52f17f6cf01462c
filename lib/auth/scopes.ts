// Token scopes narrow what a token may do; they never widen the user's role.
//   read     GET anything the user can see
//   write    create, change and delete apps, scripts, routes, members
//   execute  run scripts directly (POST /api/v1/execute/{id})
//   admin    everything above, plus users and tokens (sign-in and bootstrap tokens have it)
export const SCOPES = ["read", "write", "execute", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export function hasScope(scopes: readonly string[], needed: Scope): boolean {
  return scopes.includes("admin") || scopes.includes(needed);
}
