// The gateway's reply channels (services/gateway/replies.ts), against a real Postgres: a sync
// request leases a channel of its own from a LISTENed pool, so the hot path has no LISTEN or
// UNLISTEN, and a reply reaches only the request its channel is leased to.
import { randomUUID } from "node:crypto";
import test from "ava";
import pg from "pg";
import { createDb, type Db } from "../lib/db/pool.ts";
import { Listener } from "../lib/listen/index.ts";
import { createLogger } from "../lib/log.ts";
import { ReplyWaiter } from "../services/gateway/replies.ts";
import { baseUrl, emptyDatabase, freshDatabase } from "./helpers/db.ts";

const quiet = createLogger("replies-test", "silent");
let url: string;
let db: Db;
let notifier: pg.Client;

test.before(async () => {
  url = (await freshDatabase()).url;
  db = await createDb(url);
  notifier = new pg.Client({ connectionString: url });
  await notifier.connect();
});
test.after.always(async () => {
  await notifier?.end();
  await db?.end();
});

const reply = (id: string, body: string) => JSON.stringify({ id, ok: true, response: { status: 200, headers: {}, body } });
const notify = (channel: string, payload: string) => notifier.query("SELECT pg_notify($1, $2)", [channel, payload]);
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);

async function waiter(): Promise<{ replies: ReplyWaiter; listener: Listener }> {
  const listener = new Listener(url, quiet);
  await listener.connect();
  return { replies: new ReplyWaiter(listener, db, quiet), listener };
}

test.serial("requests one after another reuse one LISTENed channel: no LISTEN per request", async (t) => {
  const { replies, listener } = await waiter();
  t.teardown(() => listener.close());
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const id = randomUUID();
    const w = await replies.expect(id);
    seen.add(w.channel);
    await notify(w.channel, reply(id, `r${i}`));
    const r = await within(w.reply, 5000);
    t.deepEqual(r, { ok: true, response: { status: 200, headers: {}, body: `r${i}` } });
    w.done();
  }
  t.is(seen.size, 1);
  t.is(listener.channels, 1);
});

test.serial("concurrent requests each get a channel of their own; the pool grows to the concurrency and no further", async (t) => {
  const { replies, listener } = await waiter();
  t.teardown(() => listener.close());
  for (let round = 0; round < 3; round++) {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    const ws = await Promise.all(ids.map((id) => replies.expect(id)));
    t.is(new Set(ws.map((w) => w.channel)).size, 20);
    // Answer in reverse order: each reply reaches its own request.
    for (let i = ids.length - 1; i >= 0; i--) await notify(ws[i]!.channel, reply(ids[i]!, ids[i]!));
    const got = await Promise.all(ws.map((w) => within(w.reply, 5000)));
    t.deepEqual(
      got.map((r) => (r !== "pending" && r !== "closing" && r.ok ? r.response.body : r)),
      ids,
    );
    ws.forEach((w) => w.done());
  }
  t.is(listener.channels, 20);
});

test.serial("a late reply for a channel's earlier request is dropped, not given to the request holding it now", async (t) => {
  const { replies, listener } = await waiter();
  t.teardown(() => listener.close());
  const first = randomUUID();
  const a = await replies.expect(first);
  a.done(); // the caller gave up before its reply came
  const second = randomUUID();
  const b = await replies.expect(second);
  t.is(b.channel, a.channel);
  await notify(b.channel, reply(first, "stale"));
  t.is(await within(b.reply, 300), "pending");
  await notify(b.channel, reply(second, "mine"));
  const r = await within(b.reply, 5000);
  t.true(r !== "pending" && r !== "closing" && r.ok && r.response.body === "mine");
  b.done();
});

test.serial("with the listener connection away a request is refused (it must not enqueue unheard), and served again once it is back", async (t) => {
  // The listener's own database, dropped to hold its connection away (reconnects keep failing)
  // and created again to let it back.
  const { name, url: ownUrl } = await emptyDatabase();
  const admin = new pg.Client({ connectionString: baseUrl() });
  await admin.connect();
  t.teardown(() => admin.end());
  const listener = new Listener(ownUrl, quiet);
  await listener.connect();
  t.teardown(() => listener.close());
  const replies = new ReplyWaiter(listener, db, quiet);
  const warm = await replies.expect(randomUUID());
  warm.done();

  await admin.query(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  await waitFor(() => !listener.connected);
  await t.throwsAsync(replies.expect(randomUUID()), { message: /listener connection is away/ });

  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await waitFor(() => listener.connected);
  const id = randomUUID();
  const w = await replies.expect(id);
  t.is(w.channel, warm.channel); // LISTENed again by the reconnect
  const other = new pg.Client({ connectionString: ownUrl });
  await other.connect();
  t.teardown(() => other.end());
  await other.query("SELECT pg_notify($1, $2)", [w.channel, reply(id, "back")]);
  const r = await within(w.reply, 5000);
  t.true(r !== "pending" && r !== "closing" && r.ok && r.response.body === "back");
  w.done();
});

async function waitFor(ok: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}
