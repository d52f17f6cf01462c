// Floor: a graphile-worker process draining no-op jobs (concurrency 10), for bench/spine.
import { Logger, run } from "graphile-worker";

const runner = await run({
  connectionString: process.env.DATABASE_URL!,
  concurrency: 10,
  noHandleSignals: false,
  pollInterval: 2000,
  taskList: { noop: async () => undefined },
  logger: new Logger(() => () => undefined),
});
process.send?.("ready");
process.on("SIGTERM", () => void runner.stop().then(() => process.exit(0)));
