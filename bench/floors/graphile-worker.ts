// Floor: one graphile-worker process draining no-op jobs (GRAPHILE_CONCURRENCY, default 10),
// otherwise its defaults, for bench/spine.
import { Logger, run } from "graphile-worker";

const runner = await run({
  connectionString: process.env.DATABASE_URL!,
  concurrency: Number(process.env.GRAPHILE_CONCURRENCY ?? 10),
  noHandleSignals: false,
  pollInterval: 2000,
  taskList: { noop: async () => undefined },
  logger: new Logger(() => () => undefined),
});
process.send?.("ready");
process.on("SIGTERM", () => void runner.stop().then(() => process.exit(0)));
