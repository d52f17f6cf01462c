// The route matcher (lib/routes/match.ts): precedence, params, methods, hosts, conflicts.
import test from "ava";
import { compileRouteTable, matchRoute, pathShape, routesConflict, type RouteDef } from "../lib/routes/match.ts";

const r = (id: string, host_kind: RouteDef["host_kind"], host: string | null, path_kind: RouteDef["path_kind"], path: string, methods: string[] | null = null): RouteDef => ({
  id,
  host_kind,
  host,
  path_kind,
  path,
  methods,
});

const table = compileRouteTable([
  r("any-prefix", "any", null, "prefix", "/"),
  r("any-api", "any", null, "prefix", "/api"),
  r("any-api-v2", "any", null, "prefix", "/api/v2"),
  r("any-user", "any", null, "pattern", "/api/users/:id"),
  r("any-user-posts", "any", null, "pattern", "/api/users/:id/posts/:post"),
  r("any-user-me", "any", null, "exact", "/api/users/me"),
  r("any-user-literal", "any", null, "pattern", "/api/:kind/list"),
  r("any-two-params", "any", null, "pattern", "/api/:a/:b"),
  r("post-only", "any", null, "exact", "/submit", ["POST"]),
  r("get-only", "any", null, "exact", "/submit", ["GET"]),
  r("wild", "wildcard", "example.com", "prefix", "/"),
  r("wild-deep", "wildcard", "eu.example.com", "prefix", "/"),
  r("wild-deep-only-x", "wildcard", "us.example.com", "exact", "/x"),
  r("exact-host", "exact", "api.example.com", "exact", "/api/users/me"),
]);
const m = (path: string, host = "localhost", method = "GET") => {
  const hit = matchRoute(table, { host, method, path });
  return hit ? [hit.route.id, hit.params] : null;
};

test("exact path beats pattern beats prefix; the longest prefix wins, on whole segments", (t) => {
  t.deepEqual(m("/api/users/me"), ["any-user-me", {}]);
  t.deepEqual(m("/api/users/42"), ["any-user", { id: "42" }]);
  t.deepEqual(m("/api/users/42/posts/7"), ["any-user-posts", { id: "42", post: "7" }]);
  t.deepEqual(m("/api/other/thing/more"), ["any-api", {}]);
  t.deepEqual(m("/api/v2/x/y/z"), ["any-api-v2", {}]);
  t.deepEqual(m("/api/v2"), ["any-api-v2", {}]);
  t.deepEqual(m("/api"), ["any-api", {}]);
  t.deepEqual(m("/apix"), ["any-prefix", {}]);
  t.deepEqual(m("/"), ["any-prefix", {}]);
  t.deepEqual(m(""), ["any-prefix", {}]);
});

test("patterns: more literal segments win, then the leftmost literal; params are decoded", (t) => {
  t.deepEqual(m("/api/items/list"), ["any-user-literal", { kind: "items" }]);
  // equally literal (2 each): the literal further left wins
  t.deepEqual(m("/api/users/list"), ["any-user", { id: "list" }]);
  t.deepEqual(m("/api/x/y"), ["any-two-params", { a: "x", b: "y" }]);
  t.deepEqual(m("/api/users/a%20b"), ["any-user", { id: "a b" }]);
  t.deepEqual(m("/api/users/a%2Fb"), ["any-user", { id: "a/b" }]);
  t.deepEqual(m("/api/users/%E0%A4%A"), ["any-user", { id: "%E0%A4%A" }], "a malformed escape is kept as is");
  // a pattern matches exactly its number of segments
  t.deepEqual(m("/api/users/1/posts"), ["any-api", {}]);
  t.deepEqual(m("/api/users/1/posts/2/x"), ["any-api", {}]);
});

test("host: exact beats wildcard (longest suffix first) beats any; each tier falls through when its paths miss", (t) => {
  t.deepEqual(m("/api/users/me", "API.example.com:8080"), ["exact-host", {}]);
  t.deepEqual(m("/api/users/7", "api.example.com"), ["wild", {}], "exact host has no such path: wildcard next");
  t.deepEqual(m("/x", "a.eu.example.com"), ["wild-deep", {}]);
  t.deepEqual(m("/x", "eu.example.com"), ["wild", {}], "a wildcard needs a sub-domain");
  t.deepEqual(m("/x", "a.us.example.com"), ["wild-deep-only-x", {}]);
  t.deepEqual(m("/y", "a.us.example.com"), ["wild", {}], "a longer suffix without the path falls to the shorter one");
  t.deepEqual(m("/x", "example.com"), ["any-prefix", {}]);
  t.deepEqual(m("/x", "notexample.com"), ["any-prefix", {}]);
  t.deepEqual(m("/x", "b.example.com."), ["wild", {}], "trailing dot");
  t.deepEqual(m("/x", "[::1]:8080"), ["any-prefix", {}]);
  t.deepEqual(m("/x", ""), ["any-prefix", {}]);
});

test("methods filter; HEAD is served by GET; slashes are folded", (t) => {
  t.deepEqual(m("/submit", "h", "POST"), ["post-only", {}]);
  t.deepEqual(m("/submit", "h", "get"), ["get-only", {}]);
  t.deepEqual(m("/submit", "h", "HEAD"), ["get-only", {}]);
  t.deepEqual(m("/submit", "h", "DELETE"), ["any-prefix", {}], "no method match: a less specific route");
  t.deepEqual(m("/api//users/me/"), ["any-user-me", {}]);
  const only = compileRouteTable([r("g", "any", null, "exact", "/g", ["GET"])]);
  t.is(matchRoute(only, { host: "h", method: "HEAD", path: "/g" })?.route.id, "g");
  t.is(matchRoute(only, { host: "h", method: "POST", path: "/g" }), null);
  t.is(matchRoute(only, { host: "h", method: "GET", path: "/h" }), null);
  t.is(matchRoute(compileRouteTable([]), { host: "h", method: "GET", path: "/" }), null);
});

test("conflicts: same host key, same path shape, overlapping methods", (t) => {
  t.true(routesConflict(r("a", "any", null, "pattern", "/u/:id"), r("b", "any", null, "pattern", "/u/:name")));
  t.true(routesConflict(r("a", "any", null, "pattern", "/u/:id/"), r("b", "any", null, "pattern", "//u/:name")));
  t.false(routesConflict(r("a", "any", null, "pattern", "/u/:id", ["GET"]), r("b", "any", null, "pattern", "/u/:id", ["POST"])));
  t.true(routesConflict(r("a", "any", null, "exact", "/u", ["GET"]), r("b", "any", null, "exact", "/u", ["HEAD"])), "GET answers HEAD");
  t.true(routesConflict(r("a", "any", null, "exact", "/u", null), r("b", "any", null, "exact", "/u", ["POST"])));
  t.false(routesConflict(r("a", "any", null, "exact", "/u"), r("b", "any", null, "prefix", "/u")));
  t.false(routesConflict(r("a", "any", null, "prefix", "/u"), r("b", "any", null, "prefix", "/u/v")));
  t.false(routesConflict(r("a", "any", null, "pattern", "/u/:id"), r("b", "any", null, "pattern", "/:u/id")));
  t.false(routesConflict(r("a", "exact", "a.com", "exact", "/u"), r("b", "exact", "b.com", "exact", "/u")));
  t.false(routesConflict(r("a", "exact", "a.com", "exact", "/u"), r("b", "wildcard", "a.com", "exact", "/u")));
  t.false(routesConflict(r("a", "any", null, "exact", "/u"), r("b", "exact", "a.com", "exact", "/u")));
  t.is(pathShape({ path_kind: "pattern", path: "/users/:id/" }), "/users/:");
  t.is(pathShape({ path_kind: "exact", path: "//a//b/" }), "/a/b");
});

test("a large table matches by lookup, not by scanning", (t) => {
  const routes: RouteDef[] = [];
  for (let i = 0; i < 2000; i++) {
    routes.push(r(`e${i}`, "any", null, "exact", `/e/${i}`));
    routes.push(r(`p${i}`, "any", null, "pattern", `/p${i}/:id`));
    routes.push(r(`x${i}`, "any", null, "prefix", `/x/${i}`));
    routes.push(r(`h${i}`, "exact", `h${i}.test`, "exact", "/"));
    routes.push(r(`w${i}`, "wildcard", `w${i}.test`, "prefix", "/"));
  }
  const big = compileRouteTable(routes);
  t.is(matchRoute(big, { host: "h", method: "GET", path: "/e/1999" })?.route.id, "e1999");
  t.deepEqual(matchRoute(big, { host: "h", method: "GET", path: "/p1234/abc" })?.params, { id: "abc" });
  t.is(matchRoute(big, { host: "h", method: "GET", path: "/x/77/a/b/c" })?.route.id, "x77");
  t.is(matchRoute(big, { host: "h1500.test", method: "GET", path: "/" })?.route.id, "h1500");
  t.is(matchRoute(big, { host: "a.b.w42.test", method: "GET", path: "/z" })?.route.id, "w42");
  t.is(matchRoute(big, { host: "h", method: "GET", path: "/nothing" }), null);
  const start = performance.now();
  for (let i = 0; i < 50_000; i++) matchRoute(big, { host: "a.w7.test", method: "GET", path: `/x/${i % 2000}/deep/er/path` });
  const perMatchUs = ((performance.now() - start) * 1000) / 50_000;
  t.log(`${perMatchUs.toFixed(2)} µs per match over ${routes.length} routes`);
  t.true(perMatchUs < 50, "well under a millisecond even on a Pi");
});
