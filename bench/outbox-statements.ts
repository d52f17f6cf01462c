// bench/outbox-statements: the outbox's hot statements (enqueue one row, claim, complete) in a
// loop on one connection each, run through slonik (parsed and planned every time) and as named
// prepared statements (lib/db/prepared.ts), interleaved in rounds; Postgres backend CPU and
// client CPU per execution from /proc and process.cpuUsage(). No HTTP, no QuickJS, no NOTIFY
// listener: this isolates what preparing the statements saves.
//     node --import tsx bench/outbox-statements.ts      Knobs: BENCH_N (500 per round), BENCH_ROUNDS (5)
import { randomUUID } from "node:crypto";
import { loadConfig } from "../lib/config.ts";
import { createDb, sql, type Db } from "../lib/db/pool.ts";
import { migrate } from "../lib/db/migrate.ts";
import { claimBatch, completeBatch, enqueue } from "../lib/outbox/index.ts";
import { backendPids, cpuMs, dropAll, envInt, freshDb, median } from "./lib/harness.ts";

const N = envInt("BENCH_N", 500);
const ROUNDS = envInt("BENCH_ROUNDS", 5);
const name = `picloud_bench_stmts_${process.pid}`;
const config = loadConfig({});

try {
  const url = await freshDb(name);
  await migrate(url);
  const db = await createDb(url, { maximumPoolSize: 1, preparedPoolSize: 1 });
  const appId = await db.oneFirst(sql.unsafe`INSERT INTO apps (slug, name) VALUES ('b', 'b') RETURNING id`);
  const scriptId = await db.oneFirst(sql.unsafe`INSERT INTO scripts (app_id, name, source) VALUES (${appId as string}, 's', 'export default () => 1') RETURNING id`);
  // The same functions through slonik alone: a Db without its prepared pool.
  const viaSlonik = { any: db.any.bind(db), query: db.query.bind(db), transaction: db.transaction.bind(db) } as unknown as Db;
  const ok = { ok: true as const, response: { status: 200, headers: {}, body: "{}" }, logs: [], durationMs: 0 };

  async function round(d: Db) {
    const pids = await backendPids(name);
    const before = pids.map(cpuMs);
    const client = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const id = randomUUID();
      await enqueue(d, [{ id, kind: "http_sync", appId: appId as string, scriptId: scriptId as string, payload: { request: {} }, replyTo: `r${i}`, rootExecutionId: id }]);
      const { rows } = await claimBatch(d, "d1", 16, 30_000, []);
      await completeBatch(d, rows.map((row) => ({ row, outcome: ok, startedAt: new Date() })), config);
    }
    const ms = performance.now() - t0;
    const pg = pids.map(cpuMs).reduce((a, b, i) => a + b - before[i]!, 0);
    const c = process.cpuUsage(client);
    return { perSec: N / (ms / 1000), pgMs: pg / N, clientMs: (c.user + c.system) / 1000 / N };
  }
  await round(viaSlonik); // warm both pools' connections
  await round(db);
  const res: Record<string, { perSec: number; pgMs: number; clientMs: number }[]> = { slonik: [], prepared: [] };
  for (let r = 0; r < ROUNDS; r++) {
    res.slonik!.push(await round(viaSlonik));
    res.prepared!.push(await round(db));
  }
  await db.end();
  const m = (k: string, f: "perSec" | "pgMs" | "clientMs") => median(res[k]!.map((x) => x[f]));
  console.log(`\nbench/outbox-statements — enqueue + claim + complete of one row, ${N} per round, medians of ${ROUNDS} interleaved rounds`);
  console.log("| path | executions/s | Postgres CPU ms per execution | client CPU ms per execution |\n|---|---:|---:|---:|");
  for (const k of ["slonik", "prepared"]) console.log(`| ${k} | ${m(k, "perSec").toFixed(0)} | ${m(k, "pgMs").toFixed(3)} | ${m(k, "clientMs").toFixed(3)} |`);
  console.log(`| prepared ÷ slonik | ${(m("prepared", "perSec") / m("slonik", "perSec")).toFixed(2)}× | ${(m("prepared", "pgMs") / m("slonik", "pgMs")).toFixed(2)}× | ${(m("prepared", "clientMs") / m("slonik", "clientMs")).toFixed(2)}× |`);
} finally {
  await dropAll();
}
