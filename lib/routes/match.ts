// The route matcher: the gateway compiles the route table once (and on change) and matches
// every request against it without compiling anything per request.
//
// Precedence: exact host > wildcard host (longest suffix first) > any host; within a host,
// exact path > pattern (more literal segments first, then the one whose first literal comes
// earlier) > prefix (longest first).
// A route whose methods do not include the request's is skipped.

export type HostKind = "any" | "exact" | "wildcard";
export type PathKind = "exact" | "prefix" | "pattern";

export interface RouteDef {
  id: string;
  host_kind: HostKind;
  host: string | null;
  path_kind: PathKind;
  path: string;
  methods: string[] | null;
}

type Compiled<R> = { route: R; segments: string[]; literal: number; methods: Set<string> | null };
type HostTable<R> = { exact: Map<string, Compiled<R>[]>; patterns: Compiled<R>[]; prefixes: Compiled<R>[] };
export type RouteTable<R extends RouteDef> = {
  exactHosts: Map<string, HostTable<R>>;
  wildcardHosts: [suffix: string, table: HostTable<R>][];
  anyHost: HostTable<R>;
  size: number;
};

const emptyHostTable = <R>(): HostTable<R> => ({ exact: new Map(), patterns: [], prefixes: [] });
const split = (path: string) => path.split("/").filter(Boolean);

export function compileRouteTable<R extends RouteDef>(routes: readonly R[]): RouteTable<R> {
  const table: RouteTable<R> = { exactHosts: new Map(), wildcardHosts: [], anyHost: emptyHostTable(), size: routes.length };
  const wild = new Map<string, HostTable<R>>();
  for (const route of routes) {
    let ht: HostTable<R>;
    if (route.host_kind === "exact") ht = table.exactHosts.get(route.host!) ?? table.exactHosts.set(route.host!, emptyHostTable()).get(route.host!)!;
    else if (route.host_kind === "wildcard") ht = wild.get(route.host!) ?? wild.set(route.host!, emptyHostTable()).get(route.host!)!;
    else ht = table.anyHost;
    const segments = split(route.path);
    const c: Compiled<R> = { route, segments, literal: segments.filter((s) => !s.startsWith(":")).length, methods: route.methods ? new Set(route.methods) : null };
    if (route.path_kind === "exact") {
      const key = normalizePath(route.path);
      (ht.exact.get(key) ?? ht.exact.set(key, []).get(key)!).push(c);
    } else if (route.path_kind === "pattern") ht.patterns.push(c);
    else ht.prefixes.push(c);
  }
  for (const ht of [table.anyHost, ...table.exactHosts.values(), ...wild.values()]) {
    ht.patterns.sort((a, b) => b.literal - a.literal || leftmostLiteral(a, b) || b.segments.length - a.segments.length);
    ht.prefixes.sort((a, b) => b.segments.length - a.segments.length);
  }
  table.wildcardHosts = [...wild.entries()].sort((a, b) => b[0].length - a[0].length);
  return table;
}

/** Between equally literal patterns, the one with a literal where the other has a :param first wins. */
function leftmostLiteral(a: { segments: string[] }, b: { segments: string[] }): number {
  for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
    const pa = a.segments[i]!.startsWith(":"), pb = b.segments[i]!.startsWith(":");
    if (pa !== pb) return pa ? 1 : -1;
  }
  return 0;
}

/** "/a//b/" → "/a/b"; the root stays "/". */
export function normalizePath(path: string): string {
  const s = split(path);
  return s.length ? `/${s.join("/")}` : "/";
}

export type Match<R> = { route: R; params: Record<string, string> };

export function matchRoute<R extends RouteDef>(table: RouteTable<R>, req: { host: string; method: string; path: string }): Match<R> | null {
  const host = req.host.toLowerCase().replace(/:\d+$/, "");
  const method = req.method.toUpperCase();
  const segments = split(req.path);
  const path = segments.length ? `/${segments.join("/")}` : "/";
  const exactHost = table.exactHosts.get(host);
  if (exactHost) {
    const m = matchIn(exactHost, method, path, segments);
    if (m) return m;
  }
  for (const [suffix, ht] of table.wildcardHosts) {
    if (host.endsWith(`.${suffix}`)) {
      const m = matchIn(ht, method, path, segments);
      if (m) return m;
    }
  }
  return matchIn(table.anyHost, method, path, segments);
}

const allows = (c: { methods: Set<string> | null }, method: string) => c.methods === null || c.methods.has(method) || (method === "HEAD" && c.methods.has("GET"));

function matchIn<R>(ht: HostTable<R>, method: string, path: string, segments: string[]): Match<R> | null {
  for (const c of ht.exact.get(path) ?? []) if (allows(c, method)) return { route: c.route, params: {} };
  for (const c of ht.patterns) {
    if (c.segments.length !== segments.length || !allows(c, method)) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segments.length; i++) {
      const want = c.segments[i]!;
      const got = segments[i]!;
      if (want.startsWith(":")) params[want.slice(1)] = safeDecode(got);
      else if (want !== got) {
        ok = false;
        break;
      }
    }
    if (ok) return { route: c.route, params };
  }
  for (const c of ht.prefixes) {
    if (c.segments.length > segments.length || !allows(c, method)) continue;
    if (c.segments.every((s, i) => s === segments[i])) return { route: c.route, params: {} };
  }
  return null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Two routes conflict when they would match the same requests: same host key, the same path
 * definition (pattern parameter names do not count), and overlapping methods.
 */
export function routesConflict(a: RouteDef, b: RouteDef): boolean {
  if (a.host_kind !== b.host_kind || (a.host ?? "") !== (b.host ?? "") || a.path_kind !== b.path_kind) return false;
  const shape = (r: RouteDef) => split(r.path).map((s) => (r.path_kind === "pattern" && s.startsWith(":") ? ":" : s)).join("/");
  if (shape(a) !== shape(b)) return false;
  if (a.methods === null || b.methods === null) return true;
  return a.methods.some((m) => b.methods!.includes(m));
}
