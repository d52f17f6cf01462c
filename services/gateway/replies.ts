// Sync replies: each waiting request LISTENs on its own channel (before its outbox row
// commits, so the reply cannot be missed). A reply too large for a NOTIFY is read from the
// execution's row (the completing transaction wrote it there anyway). After a reconnect, waiters
// whose reply was sent while we were away are answered from the executions table. When the
// gateway stops, every waiter is told to stop waiting, so no caller hangs.
import { z } from "zod";
import { hotRows, sql, type Db } from "../../lib/db/pool.ts";
import type { ExecErrorCode, ScriptResponse } from "../../lib/executor/index.ts";
import type { Listener } from "../../lib/listen/index.ts";
import type { Logger } from "../../lib/log.ts";

export type Reply = { ok: true; response: ScriptResponse } | { ok: false; error: { code: ExecErrorCode; message: string } };
type Message = { id: string; stored?: true; ok?: boolean; response?: ScriptResponse; error?: { code: ExecErrorCode; message: string } };

export const replyChannelFor = (executionId: string) => `picloud_reply_${executionId.replaceAll("-", "")}`;

/** What a waiting request gets: its reply, or word that the gateway is closing. */
export type Waiting = { reply: Promise<Reply | "closing">; done: () => void };

const stored = z.object({ id: z.string(), status: z.string(), response: z.any(), error: z.any() });
const toReply = (row: z.infer<typeof stored>): Reply =>
  row.status === "succeeded" ? { ok: true, response: row.response } : { ok: false, error: { code: row.error?.code ?? "internal", message: row.error?.message ?? "" } };

export class ReplyWaiter {
  private waiting = new Map<string, (r: Reply | "closing") => void>();
  private closing = false;

  constructor(private readonly listener: Listener, private readonly db: Db, private readonly log: Logger) {}

  /**
   * Starts listening for `id`'s reply; `reply` settles when it arrives (or the gateway closes),
   * `done()` stops listening. Rejects when the channel cannot be listened to (the database is
   * away): the caller must not enqueue then, as nobody would hear the reply.
   */
  async expect(id: string): Promise<Waiting> {
    if (this.closing) throw new Error("the gateway is closing");
    let resolve!: (r: Reply | "closing") => void;
    const reply = new Promise<Reply | "closing">((r) => (resolve = r));
    this.waiting.set(id, resolve);
    const channel = replyChannelFor(id);
    try {
      await this.listener.listen(channel, (payload) => void this.onMessage(payload));
    } catch (err) {
      this.waiting.delete(id);
      throw err;
    }
    return {
      reply,
      done: () => {
        this.waiting.delete(id);
        this.listener.unlisten(channel).catch((err) => this.log.debug({ err: String(err) }, "unlisten failed (the connection is away; nothing is re-LISTENed)"));
      },
    };
  }

  private async onMessage(payload: string): Promise<void> {
    try {
      const msg = JSON.parse(payload) as Message;
      const resolve = this.waiting.get(msg.id);
      if (!resolve) return;
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
    const ids = [...this.waiting.keys()];
    if (!ids.length) return;
    try {
      const rows = await this.db.any(sql.type(stored)`SELECT id, status, response, error FROM executions WHERE id = ANY(${sql.array(ids, "uuid")})`);
      for (const row of rows) this.waiting.get(row.id)?.(toReply(row));
      if (rows.length) this.log.info({ answered: rows.length }, "answered sync callers whose reply was sent while the listener was away");
    } catch (err) {
      this.log.warn({ err: String(err) }, "catching up on replies failed; those callers time out");
    }
  }

  /** The gateway is stopping: every waiter stops waiting now; resolves once they have all left (bounded). */
  async close(boundMs = 3000): Promise<void> {
    this.closing = true;
    for (const resolve of this.waiting.values()) resolve("closing");
    const until = Date.now() + boundMs;
    while (this.waiting.size && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  get pending(): number {
    return this.waiting.size;
  }
}
