// Executor throughput and latency for a trivial script, beside a node:vm floor measured in the
// same run (node:vm is only a baseline here: it is never used for user code).
//   node --import tsx bench/executor.ts      (BENCH_ROUNDS, BENCH_N, PICLOUD_EXECUTOR_WORKERS)
// Cases: "warm" reuses the script version's prepared sandbox (the normal case for a hot
// script); "cold" builds a fresh runtime + context and evaluates the module every time (a
// script's first run on a worker); "host call" adds one round trip through the host bridge.
import vm from "node:vm";
import { Executor, type ExecutionJob } from "../lib/executor/index.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N = Number(process.env.BENCH_N ?? 2000);
const WORKERS = Number(process.env.PICLOUD_EXECUTOR_WORKERS ?? 1);
const SOURCE = `export default (ctx) => ({ status: 200, body: { hello: ctx.request.path } })`;
const HOST_SOURCE = `export default async (ctx) => ({ status: 200, body: { hello: await bench.echo(ctx.request.path) } })`;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const median = (xs: number[]) => pct(xs, 50);

type Round = { perSec: number; p50: number; p99: number };

async function measure(run: () => Promise<unknown>, concurrency: number): Promise<Round> {
  const lat: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < N) {
        const t = performance.now();
        await run();
        lat.push(performance.now() - t);
      }
    }),
  );
  return { perSec: N / ((performance.now() - started) / 1000), p50: median(lat), p99: pct(lat, 99) };
}

let i = 0;
const job = (source: string): ExecutionJob => ({
  executionId: `bench-${i}`,
  script: { id: "bench", name: "bench", source, version: 1, timeoutMs: 5000, memoryMb: 32 },
  app: { id: "app", slug: "bench" },
  request: { method: "GET", path: `/p${i++}`, query: {}, headers: {}, body: null, params: {} },
  triggerDepth: 0,
});

const modules = [{ name: "bench", prelude: `globalThis.bench = { echo: (x) => __host("bench.echo", [x]) };`, handlers: { "bench.echo": async (_c: unknown, args: unknown[]) => args[0] } }];
const warm = await Executor.create({ workers: WORKERS, maxConcurrentPerWorker: 16, modules });
const cold = await Executor.create({ workers: WORKERS, maxConcurrentPerWorker: 16, modules, warmSandboxesPerWorker: 0 });
const runner = (ex: Executor, source: string) => async () => {
  const o = await ex.run(job(source), {});
  if (!o.ok) throw new Error(JSON.stringify(o.error));
};

// The floor: a fresh node:vm context per execution with a timeout, same script shape.
const vmScript = new vm.Script(`(function (ctx) { return { status: 200, body: JSON.stringify({ hello: ctx.request.path }) }; })(ctx)`);
const vmRun = async () => vmScript.runInNewContext({ ctx: { request: { path: `/p${i++}` } } }, { timeout: 5000 });

const cases: [string, () => Promise<unknown>, number][] = [
  ["executor warm, 1 at a time", runner(warm, SOURCE), 1],
  ["executor warm, 16 concurrent", runner(warm, SOURCE), 16],
  ["executor cold, 1 at a time", runner(cold, SOURCE), 1],
  ["executor cold, 16 concurrent", runner(cold, SOURCE), 16],
  ["executor warm + 1 host call, 16 concurrent", runner(warm, HOST_SOURCE), 16],
  ["node:vm floor, 1 at a time", vmRun, 1],
];
for (const [, run, c] of cases) await measure(run, c); // warm-up: JIT, instances
const results = cases.map((): Round[] => []);
for (let r = 0; r < ROUNDS; r++) for (const [k, [, run, c]] of cases.entries()) results[k]!.push(await measure(run, c));
await warm.close();
await cold.close();

const floor = median(results.at(-1)!.map((x) => x.perSec));
console.log(`executor benchmark: ${N} executions per round, ${ROUNDS} rounds, medians; ${WORKERS} worker(s) (rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB)`);
console.log("| case | exec/s | p50 ms | p99 ms | exec/s vs node:vm floor |");
console.log("|---|---:|---:|---:|---:|");
for (const [k, [name]] of cases.entries()) {
  const rs = results[k]!;
  const perSec = median(rs.map((x) => x.perSec));
  console.log(`| ${name} | ${perSec.toFixed(0)} | ${median(rs.map((x) => x.p50)).toFixed(3)} | ${median(rs.map((x) => x.p99)).toFixed(3)} | ${(perSec / floor).toFixed(2)}× |`);
}
