// The raw-pg request/reply floor of bench/spine, client side: INSERT a row + NOTIFY rr_new in one
// statement, and wait for the worker's NOTIFY (floors/raw-worker.ts) on a LISTEN connection of
// our own. Two ways to wait, as a gateway could:
//  - per-request channel: LISTEN rr_r<n> before the INSERT, UNLISTEN after the reply (the
//    product's design: two more statements per request on the one LISTEN connection, one of
//    them before the INSERT);
//  - shared channel: one channel per client, LISTENed once; the request id rides in the payload.
import type { ChildProcess } from "node:child_process";
import pg from "pg";
import { backendPids, forkReady, freshDb, stopChild } from "../lib/harness.ts";

export type RawFloor = {
  perRequest: () => Promise<true>;
  shared: () => Promise<true>;
  cpuGroups: Record<string, () => number[] | Promise<number[]>>;
  close(): Promise<void>;
};

export async function startRawFloor(dbName: string): Promise<RawFloor> {
  const url = await freshDb(dbName);
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query("CREATE TABLE rr (id bigserial PRIMARY KEY, reply_to text NOT NULL, req text NOT NULL, claimed boolean NOT NULL DEFAULT false)");
  await setup.end();
  const worker: ChildProcess = await forkReady("floors/raw-worker.ts", { DATABASE_URL: url });
  const pool = new pg.Pool({ connectionString: url, max: 20 }); // the gateway's pool size
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  // The cleanup drops the database WITH (FORCE), which terminates idle connections: not a crash.
  pool.on("error", () => undefined);
  listener.on("error", () => undefined);
  // One statement at a time on the LISTEN connection (pg would queue them too, with a warning).
  let chain: Promise<unknown> = Promise.resolve();
  const onListener = (text: string) => {
    const p = chain.then(() => listener.query(text));
    chain = p.catch(() => undefined);
    return p;
  };
  const waiting = new Map<string, () => void>();
  const sharedChannel = `rr_shared_${process.pid}`;
  listener.on("notification", (n) => {
    const key = n.channel === sharedChannel ? n.payload! : n.channel;
    const resolve = waiting.get(key);
    waiting.delete(key);
    resolve?.();
  });
  await onListener(`LISTEN ${sharedChannel}`);
  await pool.query("SELECT 1");
  let seq = 0;
  const insert = (replyTo: string, req: string) => pool.query("WITH i AS (INSERT INTO rr (reply_to, req) VALUES ($1, $2)) SELECT pg_notify('rr_new', '')", [replyTo, req]);

  return {
    async perRequest() {
      const channel = `rr_r${seq++}`;
      const got = new Promise<void>((r) => waiting.set(channel, r));
      await onListener(`LISTEN ${channel}`); // before the row commits: the reply cannot be missed
      await insert(channel, "");
      await got;
      void onListener(`UNLISTEN ${channel}`);
      return true;
    },
    async shared() {
      const req = String(seq++);
      const got = new Promise<void>((r) => waiting.set(req, r));
      await insert(sharedChannel, req);
      await got;
      return true;
    },
    cpuGroups: {
      "floor worker": () => [worker.pid!],
      "floor postgres": () => backendPids(dbName),
      "bench client": () => [process.pid],
    },
    async close() {
      await stopChild(worker);
      await listener.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
