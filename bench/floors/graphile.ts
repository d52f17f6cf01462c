// The async floor of bench/spine: graphile-worker 0.17.3 (its own schema, a fresh database)
// draining no-op jobs with 2 worker processes × concurrency 10 (floors/graphile-worker.ts).
// The workers start first and sit idle; the jobs are then enqueued in ONE statement, and the
// drain is timed from its commit until the jobs table is empty (process start-up not counted).
// Start-up and enqueue times are returned too, for the log.
import pg from "pg";
import { forkReady, freshDb, sleep, stopChild } from "../lib/harness.ts";

export async function graphileDrain(dbName: string, jobs: number, processes = 2, concurrency = 10): Promise<{ perSec: number; seconds: number; enqueueSeconds: number }> {
  const url = await freshDb(dbName);
  const { runMigrations } = await import("graphile-worker");
  await runMigrations({ connectionString: url });
  const workers = await Promise.all(Array.from({ length: processes }, () => forkReady("floors/graphile-worker.ts", { DATABASE_URL: url, GRAPHILE_CONCURRENCY: String(concurrency) })));
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await sleep(500); // let both runners settle (their first poll) before the jobs arrive
    const enqueueStarted = performance.now();
    // add_jobs: the batch form (one call, one statement), as graphile-worker's own addJobs does.
    await c.query(
      `SELECT graphile_worker.add_jobs(array_agg(('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
       FROM generate_series(1, $1::int)`,
      [jobs],
    );
    const started = performance.now();
    const enqueueSeconds = (started - enqueueStarted) / 1000;
    for (;;) {
      const { rows } = await c.query<{ left: boolean }>("SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS left");
      if (!rows[0]!.left) break;
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1000;
    return { perSec: jobs / seconds, seconds, enqueueSeconds };
  } finally {
    await c.end();
    await Promise.all(workers.map(stopChild));
  }
}
