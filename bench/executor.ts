// Executor throughput and latency for a trivial script, beside a node:vm floor measured in the
// same run (node:vm is only a baseline here: it is never used for user code).
//   node --import tsx bench/executor.ts        (BENCH_ROUNDS, BENCH_N to change the sizes)
import vm from "node:vm";
import { Executor, type ExecutionJob } from "../lib/executor/index.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N = Number(process.env.BENCH_N ?? 2000);
const SOURCE = `export default (ctx) => ({ status: 200, body: { hello: ctx.request.path } })`;

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

const job = (i: number): ExecutionJob => ({
  executionId: `bench-${i}`,
  script: { id: "bench", name: "bench", source: SOURCE, version: 1, timeoutMs: 5000, memoryMb: 32 },
  app: { id: "app", slug: "bench" },
  request: { method: "GET", path: `/p${i}`, query: {}, headers: {}, body: null, params: {} },
  triggerDepth: 0,
});

// The floor: a fresh node:vm context per execution with a timeout, same script shape.
const vmSource = `(function (ctx) { return { status: 200, body: { hello: ctx.request.path } }; })(ctx)`;
const vmScript = new vm.Script(vmSource);
let vmI = 0;
const vmRun = async () => vmScript.runInNewContext({ ctx: { request: { path: `/p${vmI++}` } } }, { timeout: 5000 });

const executor = await Executor.create({ workers: Number(process.env.PICLOUD_EXECUTOR_WORKERS ?? 1) });
let i = 0;
const qjs = async () => {
  const o = await executor.run(job(i++), {});
  if (!o.ok) throw new Error(JSON.stringify(o.error));
};
await measure(qjs, 8); // warm-up: instances, compiled WASM

const rows: [string, Round[]][] = [
  ["picloud executor, 1 at a time", []],
  ["picloud executor, 16 concurrent", []],
  ["node:vm floor, 1 at a time", []],
];
for (let r = 0; r < ROUNDS; r++) {
  rows[0]![1].push(await measure(qjs, 1));
  rows[1]![1].push(await measure(qjs, 16));
  rows[2]![1].push(await measure(vmRun, 1));
}
await executor.close();

const floor = median(rows[2]![1].map((x) => x.perSec));
console.log(`executor benchmark: ${N} executions per round, ${ROUNDS} rounds, medians (rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB)`);
console.log("| case | exec/s | p50 ms | p99 ms | exec/s vs node:vm floor |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, rs] of rows) {
  const perSec = median(rs.map((x) => x.perSec));
  console.log(`| ${name} | ${perSec.toFixed(0)} | ${median(rs.map((x) => x.p50)).toFixed(3)} | ${median(rs.map((x) => x.p99)).toFixed(3)} | ${(perSec / floor).toFixed(2)}× |`);
}
