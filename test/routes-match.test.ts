import test from "ava";
import { compileRouteTable, matchRoute, routesConflict, type RouteDef } from "../lib/routes/match.ts";

const r = (id: string, host_kind: RouteDef["host_kind"], host: string | null, path_kind: RouteDef["path_kind"], path: string, methods: string[] | null = null): RouteDef => ({ id, host_kind, host, path_kind, path, methods });

const table = compileRouteTable([
  r("any-prefix", "any", null, "prefix", "/"),
  r("any-api", "any", null, "prefix", "/api"),
  r("any-user", "any", null, "pattern", "/api/users/:id"),
  r("any-user-posts", "any", null, "pattern", "/api/users/:id/posts/:post"),
  r("any-user-me", "any", null, "exact", "/api/users/me"),
  r("any-user-literal", "any", null, "pattern", "/api/:kind/list"),
  r("post-only", "any", null, "exact", "/submit", ["POST"]),
  r("wild", "wildcard", "example.com", "prefix", "/"),
  r("wild-deep", "wildcard", "eu.example.com", "prefix", "/"),
  r("exact-host", "exact", "api.example.com", "exact", "/api/users/me"),
]);
const m = (path: string, host = "localhost", method = "GET") => {
  const hit = matchRoute(table, { host, method, path });
  return hit ? [hit.route.id, hit.params] : null;
};

test("exact path beats pattern beats prefix; longest prefix wins", (t) => {
  t.deepEqual(m("/api/users/me"), ["any-user-me", {}]);
  t.deepEqual(m("/api/users/42"), ["any-user", { id: "42" }]);
  t.deepEqual(m("/api/users/42/posts/7"), ["any-user-posts", { id: "42", post: "7" }]);
  t.deepEqual(m("/api/other/thing"), ["any-api", {}]);
  t.deepEqual(m("/apix"), ["any-prefix", {}]);
  t.deepEqual(m("/"), ["any-prefix", {}]);
});

test("patterns with more literal segments win; params are decoded", (t) => {
  t.deepEqual(m("/api/items/list"), ["any-user-literal", { kind: "items" }]);
  // equally literal: the literal further left wins
  t.deepEqual(m("/api/users/list"), ["any-user", { id: "list" }]);
  t.deepEqual(m("/api/users/a%20b"), ["any-user", { id: "a b" }]);
});

test("exact host beats wildcard (longest suffix first) beats any; host port and case are ignored", (t) => {
  t.deepEqual(m("/api/users/me", "API.example.com:8080"), ["exact-host", {}]);
  t.deepEqual(m("/api/users/7", "api.example.com"), ["wild", {}]);
  t.deepEqual(m("/x", "a.eu.example.com"), ["wild-deep", {}]);
  t.deepEqual(m("/x", "example.com"), ["any-prefix", {}]);
});

test("methods filter; HEAD follows GET; trailing and double slashes are folded", (t) => {
  t.deepEqual(m("/submit", "h", "POST"), ["post-only", {}]);
  t.deepEqual(m("/submit", "h", "GET"), ["any-prefix", {}]);
  t.deepEqual(m("/api//users/me/"), ["any-user-me", {}]);
  t.is(matchRoute(compileRouteTable([r("g", "any", null, "exact", "/g", ["GET"])]), { host: "h", method: "HEAD", path: "/g" })?.route.id, "g");
  t.is(matchRoute(compileRouteTable([r("g", "any", null, "exact", "/g", ["GET"])]), { host: "h", method: "GET", path: "/h" }), null);
});

test("conflicts: same host, same path shape, overlapping methods", (t) => {
  t.true(routesConflict(r("a", "any", null, "pattern", "/u/:id"), r("b", "any", null, "pattern", "/u/:name")));
  t.false(routesConflict(r("a", "any", null, "pattern", "/u/:id", ["GET"]), r("b", "any", null, "pattern", "/u/:id", ["POST"])));
  t.true(routesConflict(r("a", "any", null, "exact", "/u", null), r("b", "any", null, "exact", "/u", ["POST"])));
  t.false(routesConflict(r("a", "any", null, "exact", "/u"), r("b", "any", null, "prefix", "/u")));
  t.false(routesConflict(r("a", "exact", "a.com", "exact", "/u"), r("b", "exact", "b.com", "exact", "/u")));
});
