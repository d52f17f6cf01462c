// bench/spine-statements: how many statements (round trips), parses and notifications one
// execution costs on the spine, counted on the wire by a proxy between every picloud process and
// Postgres (bench/lib/pgcount.ts). Companion to bench/spine (which says how fast); this says
// where the round trips go.      node --import tsx bench/spine-statements.ts
// Knobs: BENCH_N (2000 per case), BENCH_DISPATCHERS (2), BENCH_QUICK=1 (N = 300).
import { createServer } from "node:net";
import pg from "pg";
import { migrate } from "../lib/db/migrate.ts";
import { base, dropAll, envInt, fixedCount, freshDb, httpClient, sleep, startService, stopService, type Child } from "./lib/harness.ts";
import { deployBenchRoutes } from "./lib/deploy.ts";
import { startCountingProxy, type Counts } from "./lib/pgcount.ts";

const N = envInt("BENCH_N", process.env.BENCH_QUICK === "1" ? 300 : 2000);
const DISPATCHERS = envInt("BENCH_DISPATCHERS", 2);
const name = `picloud_bench_stmts_${process.pid}`;
const services: Child[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const url = await freshDb(name);
await migrate(url);
const server = new URL(base);
const proxy = await startCountingProxy({ host: server.hostname || "127.0.0.1", port: Number(server.port || 5432) });
const viaProxy = Object.assign(new URL(url), { hostname: "127.0.0.1", port: String(proxy.port) }).toString();
const port = await freePort();
const env = { DATABASE_URL: viaProxy, PICLOUD_PORT: String(port), PICLOUD_HOST: "127.0.0.1", LOG_LEVEL: "warn" };
const cases: [string, Counts, number][] = [];
try {
  services.push(await startService("gateway", env));
  for (let i = 0; i < DISPATCHERS; i++) services.push(await startService("dispatcher", env));
  services.push(await startService("sweeper", env));
  await deployBenchRoutes(port, ["sync", "async"]);
  const db = new pg.Client({ connectionString: url }); // direct, not counted
  await db.connect();
  const http = httpClient(port);
  await fixedCount(8, 200, () => http.request("GET", "/sync", 200)); // warm: caches, pools, JIT
  await sleep(300);

  for (const callers of [1, 32]) {
    proxy.reset();
    await fixedCount(callers, N, () => http.request("GET", "/sync", 200));
    await sleep(200); // the last completions' follow-up claims
    cases.push([`sync @${callers}`, proxy.counts, N]);
  }
  proxy.reset();
  await fixedCount(32, N, () => http.request("POST", "/async", 202));
  for (;;) {
    const { rows } = await db.query<{ left: boolean }>("SELECT EXISTS (SELECT 1 FROM outbox) AS left");
    if (!rows[0]!.left) break;
    await sleep(20);
  }
  await sleep(200);
  cases.push([`async accepted @32 while draining`, proxy.counts, N]);
  http.close();
  await db.end();
} finally {
  await Promise.all(services.map((s) => stopService(s)));
  await proxy.close();
  await dropAll();
}

// One table: statement | runs (parses) per execution for each case.
const keys = [...new Set(cases.flatMap(([, c]) => [...c.statements.keys()]))];
const per = (c: Counts, k: string, n: number) => {
  const s = c.statements.get(k);
  return s ? `${(s.runs / n).toFixed(2)} (${(s.parses / n).toFixed(2)})` : "-";
};
const total = (c: Counts, n: number) => {
  let runs = 0, parses = 0;
  for (const s of c.statements.values()) (runs += s.runs), (parses += s.parses);
  return `**${(runs / n).toFixed(2)} (${(parses / n).toFixed(2)})**`;
};
keys.sort((a, b) => (cases[1]![1].statements.get(b)?.runs ?? 0) - (cases[1]![1].statements.get(a)?.runs ?? 0));
console.log(`\nbench/spine-statements — per execution, ${N} executions per case, ${DISPATCHERS} dispatchers: statements run (of which parsed + planned)`);
console.log(`| statement | ${cases.map(([n]) => n).join(" | ")} |`);
console.log(`|---|${cases.map(() => "---:").join("|")}|`);
for (const k of keys) if (cases.some(([, c, n]) => (c.statements.get(k)?.runs ?? 0) / n >= 0.005)) console.log(`| \`${k}\` | ${cases.map(([, c, n]) => per(c, k, n)).join(" | ")} |`);
console.log(`| all statements | ${cases.map(([, c, n]) => total(c, n)).join(" | ")} |`);
console.log(`| notifications delivered | ${cases.map(([, c, n]) => (c.notifications / n).toFixed(2)).join(" | ")} |`);
process.exit(0);
