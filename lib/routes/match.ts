// The route matcher. The gateway compiles the route table once (and again when routes change)
// and matches every request against it with map lookups: nothing is compiled per request.
//
// Precedence (the first tier that has a match wins):
//   1. host:  exact host > wildcard host, longest suffix first (`*.eu.example.com` before
//             `*.example.com`; a wildcard matches sub-domains only, not the bare domain) > any host.
//             When no route of a more specific host tier matches the path, the next tier is tried.
//   2. path, within one host:
//             exact path > pattern (more literal segments first; between equally literal
//             patterns, the one with a literal where the other has a :param, leftmost first)
//             > prefix (longest first; a prefix matches whole segments: `/api` matches `/api`
//             and `/api/x`, not `/apix`).
//   3. method: a route whose methods do not include the request's is skipped (HEAD is served by a
//             GET route). Routes that could both match one request are refused at creation
//             (routesConflict), so within a tier at most one route applies.
// Paths are compared segment-wise after folding repeated and trailing slashes.

export type HostKind = "any" | "exact" | "wildcard";
export type PathKind = "exact" | "prefix" | "pattern";

/** What the matcher needs of a route; `host` of a wildcard is the suffix after "*.". */
export interface RouteDef {
  id: string;
  host_kind: HostKind;
  host: string | null;
  path_kind: PathKind;
  path: string;
  methods: string[] | null;
}

type Compiled<R> = { route: R; segments: string[]; literal: number; methods: Set<string> | null };
type HostTable<R> = {
  /** normalised path → routes (their method sets are disjoint) */
  exact: Map<string, Compiled<R>[]>;
  /** segment count → patterns with that many segments, most specific first */
  patterns: Map<number, Compiled<R>[]>;
  /** normalised prefix → routes */
  prefixes: Map<string, Compiled<R>[]>;
  /** the deepest prefix, so a long request path does not probe depths no prefix has */
  prefixDepth: number;
};
export type RouteTable<R extends RouteDef> = {
  exactHosts: Map<string, HostTable<R>>;
  /** keyed by suffix ("example.com" for `*.example.com`) */
  wildcardHosts: Map<string, HostTable<R>>;
  anyHost: HostTable<R>;
  size: number;
};
export type Match<R> = { route: R; params: Record<string, string> };

const emptyHostTable = <R>(): HostTable<R> => ({ exact: new Map(), patterns: new Map(), prefixes: new Map(), prefixDepth: -1 });
const split = (path: string) => path.split("/").filter(Boolean);
const isParam = (segment: string) => segment.startsWith(":");
const join = (segments: readonly string[]) => (segments.length ? `/${segments.join("/")}` : "/");
const push = <K, V>(map: Map<K, V[]>, key: K, value: V) => {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
};
const tableFor = <R>(map: Map<string, HostTable<R>>, key: string): HostTable<R> => {
  let t = map.get(key);
  if (!t) map.set(key, (t = emptyHostTable()));
  return t;
};

/**
 * Paths the gateway serves itself, ahead of user routes: the dashboard, the admin API, the probes
 * and metrics. A route at or under one of them could never be reached, so it is refused. (A
 * broader route, such as the prefix `/` or the pattern `/:page`, may exist: these paths win.)
 */
export const PLATFORM_PATHS = ["/admin", "/api/v1", "/healthz", "/readyz", "/metrics"] as const;

/** The platform path a route's path lies at or under, if any (segment-wise, like prefixes). */
export function platformPathOf(path: string): string | undefined {
  const segments = split(path);
  return PLATFORM_PATHS.find((p) => {
    const reserved = split(p);
    return reserved.length <= segments.length && reserved.every((s, i) => segments[i] === s);
  });
}

/** "/a//b/" → "/a/b"; the root stays "/". */
export function normalizePath(path: string): string {
  return join(split(path));
}

export function compileRouteTable<R extends RouteDef>(routes: readonly R[]): RouteTable<R> {
  const table: RouteTable<R> = { exactHosts: new Map(), wildcardHosts: new Map(), anyHost: emptyHostTable(), size: routes.length };
  for (const route of routes) {
    const ht =
      route.host_kind === "exact" ? tableFor(table.exactHosts, route.host!) : route.host_kind === "wildcard" ? tableFor(table.wildcardHosts, route.host!) : table.anyHost;
    const segments = split(route.path);
    const c: Compiled<R> = { route, segments, literal: segments.filter((s) => !isParam(s)).length, methods: route.methods ? new Set(route.methods) : null };
    if (route.path_kind === "exact") push(ht.exact, join(segments), c);
    else if (route.path_kind === "pattern") push(ht.patterns, segments.length, c);
    else {
      push(ht.prefixes, join(segments), c);
      ht.prefixDepth = Math.max(ht.prefixDepth, segments.length);
    }
  }
  for (const ht of [table.anyHost, ...table.exactHosts.values(), ...table.wildcardHosts.values()]) {
    for (const list of ht.patterns.values()) list.sort((a, b) => b.literal - a.literal || leftmostLiteral(a, b));
  }
  return table;
}

/** Between equally literal patterns, the one with a literal where the other has a :param first wins. */
function leftmostLiteral(a: { segments: string[] }, b: { segments: string[] }): number {
  for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
    const pa = isParam(a.segments[i]!), pb = isParam(b.segments[i]!);
    if (pa !== pb) return pa ? 1 : -1;
  }
  return 0;
}

export function matchRoute<R extends RouteDef>(table: RouteTable<R>, req: { host: string; method: string; path: string }): Match<R> | null {
  const host = hostOf(req.host);
  const method = req.method.toUpperCase();
  const segments = split(req.path);
  const path = join(segments);
  const exactHost = table.exactHosts.get(host);
  if (exactHost) {
    const m = matchIn(exactHost, method, path, segments);
    if (m) return m;
  }
  if (table.wildcardHosts.size) {
    // "a.eu.example.com" tries "eu.example.com", then "example.com", then "com": longest first.
    for (let dot = host.indexOf("."); dot !== -1; dot = host.indexOf(".", dot + 1)) {
      const ht = table.wildcardHosts.get(host.slice(dot + 1));
      if (!ht) continue;
      const m = matchIn(ht, method, path, segments);
      if (m) return m;
    }
  }
  return matchIn(table.anyHost, method, path, segments);
}

/** The Host header without port or trailing dot, lower-case (IPv6 literals keep their brackets). */
function hostOf(header: string): string {
  let h = header.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(":");
  if (colon !== -1) h = h.slice(0, colon);
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

const allows = (c: { methods: Set<string> | null }, method: string) => c.methods === null || c.methods.has(method) || (method === "HEAD" && c.methods.has("GET"));

function matchIn<R>(ht: HostTable<R>, method: string, path: string, segments: string[]): Match<R> | null {
  const exact = ht.exact.get(path);
  if (exact) for (const c of exact) if (allows(c, method)) return { route: c.route, params: {} };

  const patterns = ht.patterns.get(segments.length);
  if (patterns) {
    for (const c of patterns) {
      if (!allows(c, method)) continue;
      const params = bind(c.segments, segments);
      if (params) return { route: c.route, params };
    }
  }

  for (let depth = Math.min(ht.prefixDepth, segments.length); depth >= 0; depth--) {
    const routes = ht.prefixes.get(depth === segments.length ? path : join(segments.slice(0, depth)));
    if (routes) for (const c of routes) if (allows(c, method)) return { route: c.route, params: {} };
  }
  return null;
}

function bind(pattern: string[], segments: string[]): Record<string, string> | null {
  let params: Record<string, string> | null = null;
  for (let i = 0; i < segments.length; i++) {
    const want = pattern[i]!;
    if (isParam(want)) (params ??= {})[want.slice(1)] = safeDecode(segments[i]!);
    else if (want !== segments[i]) return null;
  }
  return params ?? {};
}

function safeDecode(s: string): string {
  if (!s.includes("%")) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The methods a route answers, HEAD included where GET is (null: all). */
const effectiveMethods = (methods: string[] | null) => (methods === null ? null : methods.includes("GET") ? [...methods, "HEAD"] : methods);

/**
 * Two routes conflict when they would match the same requests: the same host key, the same path
 * definition (after normalising slashes; pattern parameter names do not count) and overlapping
 * methods (no methods means all; GET also answers HEAD). Routes of different specificity (an
 * exact path and a pattern that covers it, a prefix and a longer prefix) do not conflict: the
 * precedence above decides between them.
 */
export function routesConflict(a: RouteDef, b: RouteDef): boolean {
  if (a.host_kind !== b.host_kind || (a.host ?? "") !== (b.host ?? "") || a.path_kind !== b.path_kind) return false;
  if (pathShape(a) !== pathShape(b)) return false;
  const ma = effectiveMethods(a.methods), mb = effectiveMethods(b.methods);
  if (ma === null || mb === null) return true;
  return ma.some((m) => mb.includes(m));
}

/** The path with slashes folded and pattern parameter names dropped: "/users/:id/" → "/users/:". */
export function pathShape(r: Pick<RouteDef, "path" | "path_kind">): string {
  return join(split(r.path).map((s) => (r.path_kind === "pattern" && isParam(s) ? ":" : s)));
}
