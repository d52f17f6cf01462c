// Token scopes narrow what a token may do; they never widen what its user may do. Every admin
// request needs one scope AND the user's role on the app concerned (lib/auth/roles.ts), so a
// viewer's `write` token still cannot write, and an owner's `read` token cannot write either.
//
//   read     GET anything the user can see: apps, members, scripts, routes, executions
//   write    create, change and delete apps, members, scripts and routes
//   execute  run scripts directly (POST /api/v1/execute/{script_id})
//   admin    everything the user may do: all of the above, plus their tokens (mint, list,
//            revoke) and, for the owner, users. Bootstrap and login tokens carry it.
export const SCOPES = ["read", "write", "execute", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export function hasScope(scopes: readonly string[], needed: Scope): boolean {
  return scopes.includes("admin") || scopes.includes(needed);
}
