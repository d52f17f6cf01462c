// Sync replies: each waiting request LISTENs on its own channel (before its outbox row
// commits, so the reply cannot be missed). A reply too large for a NOTIFY is read from the
// execution's row. After a reconnect, waiters whose reply was sent while we were away are
// answered from the executions table.
import { z } from "zod";
import { sql, type Db } from "../../lib/db/pool.ts";
import type { ExecErrorCode, ScriptResponse } from "../../lib/executor/index.ts";
import type { Listener } from "../../lib/listen/index.ts";
import type { Logger } from "../../lib/log.ts";

export type Reply = { ok: true; response: ScriptResponse } | { ok: false; error: { code: ExecErrorCode; message: string } };
type Message = { id: string; stored?: true; ok?: boolean; response?: ScriptResponse; error?: { code: ExecErrorCode; message: string } };

export const replyChannelFor = (executionId: string) => `picloud_reply_${executionId.replaceAll("-", "")}`;

const stored = z.object({ status: z.string(), response: z.any(), error: z.any() });

export class ReplyWaiter {
  private waiting = new Map<string, (r: Reply) => void>();

  constructor(private readonly listener: Listener, private readonly db: Db, private readonly log: Logger) {}

  /** Starts listening for `id`'s reply; `reply` settles when it arrives, `done()` stops listening. */
  async expect(id: string): Promise<{ reply: Promise<Reply>; done: () => void }> {
    let resolve!: (r: Reply) => void;
    const reply = new Promise<Reply>((r) => (resolve = r));
    this.waiting.set(id, resolve);
    const channel = replyChannelFor(id);
    await this.listener.listen(channel, (payload) => void this.onMessage(payload));
    return {
      reply,
      done: () => {
        this.waiting.delete(id);
        this.listener.unlisten(channel).catch((err) => this.log.warn({ err }, "unlisten failed"));
      },
    };
  }

  private async onMessage(payload: string): Promise<void> {
    try {
      const msg = JSON.parse(payload) as Message;
      const resolve = this.waiting.get(msg.id);
      if (!resolve) return;
      if (msg.stored) {
        const r = await this.fromExecution(msg.id);
        if (r) resolve(r);
      } else resolve(msg.ok ? { ok: true, response: msg.response! } : { ok: false, error: msg.error! });
    } catch (err) {
      this.log.error({ err }, "bad reply message");
    }
  }

  private async fromExecution(id: string): Promise<Reply | null> {
    const row = await this.db.maybeOne(sql.type(stored)`SELECT status, response, error FROM executions WHERE id = ${id}`);
    if (!row) return null;
    return row.status === "succeeded" ? { ok: true, response: row.response } : { ok: false, error: row.error };
  }

  /** After a reconnect: answer the waiters whose execution finished meanwhile. */
  async catchUp(): Promise<void> {
    for (const [id, resolve] of [...this.waiting]) {
      const r = await this.fromExecution(id).catch(() => null);
      if (r) resolve(r);
    }
  }

  get pending(): number {
    return this.waiting.size;
  }
}
