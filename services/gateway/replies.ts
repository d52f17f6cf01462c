// Sync replies. Each waiting request has a NOTIFY channel of its own for as long as it waits,
// LISTENed before its outbox row commits, so the reply cannot be missed. Channels are leased from
// a pool this gateway keeps LISTENed to: a request takes an idle channel and gives it back when
// it stops waiting, so the hot path costs no LISTEN or UNLISTEN round trip (each was a statement
// Postgres parses, on the one listener connection every request shares); a channel is LISTENed
// only when every pooled one is taken, and the pool keeps at most POOL_MAX idle channels. A
// reply names its execution, and a channel passes a reply only to the request it was leased to:
// a late reply for an earlier tenant (a caller that gave up) is dropped.
//
// A reply too large for a NOTIFY is read from the execution's row (the completing transaction
// wrote it there anyway). After a reconnect, waiters whose reply was sent while we were away are
// answered from the executions table. When the gateway stops, every waiter is told to stop
// waiting, so no caller hangs.
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { hotRows, sql, type Db } from "../../lib/db/pool.ts";
import type { ExecErrorCode, ScriptResponse } from "../../lib/executor/index.ts";
import type { Listener } from "../../lib/listen/index.ts";
import type { Logger } from "../../lib/log.ts";

export type Reply = { ok: true; response: ScriptResponse } | { ok: false; error: { code: ExecErrorCode; message: string } };
type Message = { id: string; stored?: true; ok?: boolean; response?: ScriptResponse; error?: { code: ExecErrorCode; message: string } };

/** What a waiting request gets: the channel its reply comes on, the reply (or word that the gateway is closing), and `done()`. */
export type Waiting = { channel: string; reply: Promise<Reply | "closing">; done: () => void };

/** Idle reply channels kept LISTENed beyond this many are UNLISTENed (a burst's channels go back). */
const POOL_MAX = 256;

const stored = z.object({ id: z.string(), status: z.string(), response: z.any(), error: z.any() });
const toReply = (row: z.infer<typeof stored>): Reply =>
  row.status === "succeeded" ? { ok: true, response: row.response } : { ok: false, error: { code: row.error?.code ?? "internal", message: row.error?.message ?? "" } };

type Tenant = { id: string; resolve: (r: Reply | "closing") => void };

export class ReplyWaiter {
  /** Channels by the request waiting on them. */
  private waiting = new Map<string, Tenant>();
  /** Execution id → its channel (catch-up after a reconnect looks up by id). */
  private channelOf = new Map<string, string>();
  private idle: string[] = [];
  private created = 0;
  /** Unique to this process: a restarted gateway's channels are new ones. */
  private readonly prefix = `picloud_reply_${randomBytes(6).toString("hex")}_`;
  private closing = false;

  constructor(private readonly listener: Listener, private readonly db: Db, private readonly log: Logger) {}

  /**
   * Leases a reply channel for `id`; `reply` settles when the reply arrives (or the gateway
   * closes), `done()` gives the channel back. Rejects when a new channel cannot be listened to
   * (the database is away): the caller must not enqueue then, as nobody would hear the reply.
   */
  async expect(id: string): Promise<Waiting> {
    if (this.closing) throw new Error("the gateway is closing");
    // Pooled channels are heard only while the connection is up (a reply sent meanwhile is
    // found by catchUp() once it is back; new callers are turned away until then).
    if (!this.listener.connected) throw new Error("the listener connection is away");
    const channel = this.idle.pop() ?? (await this.listenNew());
    let resolve!: (r: Reply | "closing") => void;
    const reply = new Promise<Reply | "closing">((r) => (resolve = r));
    this.waiting.set(channel, { id, resolve });
    this.channelOf.set(id, channel);
    return {
      channel,
      reply,
      done: () => {
        if (this.waiting.get(channel)?.id !== id) return;
        this.waiting.delete(channel);
        this.channelOf.delete(id);
        this.giveBack(channel);
      },
    };
  }

  private async listenNew(): Promise<string> {
    const channel = `${this.prefix}${this.created++}`;
    await this.listener.listen(channel, (payload) => void this.onMessage(channel, payload));
    return channel;
  }

  private giveBack(channel: string): void {
    if (this.idle.length < POOL_MAX && !this.closing) {
      this.idle.push(channel);
      return;
    }
    this.listener.unlisten(channel).catch((err) => this.log.debug({ err: String(err) }, "unlisten failed (the connection is away; nothing is re-LISTENed)"));
  }

  private async onMessage(channel: string, payload: string): Promise<void> {
    try {
      const msg = JSON.parse(payload) as Message;
      const tenant = this.waiting.get(channel);
      if (tenant?.id !== msg.id) return;
      const { resolve } = tenant;
      if (msg.stored) {
        const r = await this.result(msg.id);
        if (r) resolve(r);
      } else resolve(msg.ok ? { ok: true, response: msg.response! } : { ok: false, error: msg.error! });
    } catch (err) {
      this.log.error({ err }, "bad reply message");
    }
  }

  /** The recorded result of a finished execution (null while it is not finished). */
  async result(id: string): Promise<Reply | null> {
    const [row] = await hotRows<z.infer<typeof stored>>(this.db, sql.unsafe`SELECT id, status, response, error FROM executions WHERE id = ${id}`);
    return row ? toReply(row) : null;
  }

  /** After a reconnect: answer the waiters whose execution finished meanwhile (one query). */
  async catchUp(): Promise<void> {
    const ids = [...this.channelOf.keys()];
    if (!ids.length) return;
    try {
      const rows = await this.db.any(sql.type(stored)`SELECT id, status, response, error FROM executions WHERE id = ANY(${sql.array(ids, "uuid")})`);
      for (const row of rows) this.waiting.get(this.channelOf.get(row.id) ?? "")?.resolve(toReply(row));
      if (rows.length) this.log.info({ answered: rows.length }, "answered sync callers whose reply was sent while the listener was away");
    } catch (err) {
      this.log.warn({ err: String(err) }, "catching up on replies failed; those callers time out");
    }
  }

  /** The gateway is stopping: every waiter stops waiting now; resolves once they have all left (bounded). */
  async close(boundMs = 3000): Promise<void> {
    this.closing = true;
    for (const { resolve } of this.waiting.values()) resolve("closing");
    const until = Date.now() + boundMs;
    while (this.waiting.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  get pending(): number {
    return this.waiting.size;
  }
}
