// The one LISTEN connection of a process (pg-listen on raw pg: slonik cannot LISTEN). It is
// never used for transactions. It reconnects without limit, re-LISTENs every channel, then
// calls onReconnect so the process can catch up on anything it missed while away.
import pgListen from "pg-listen";
import type { Logger } from "../log.ts";
import { listenerReconnects } from "../metrics/index.ts";

type Subscriber = ReturnType<typeof pgListen.default>;

export class Listener {
  private readonly sub: Subscriber;
  private readonly handlers = new Map<string, (payload: string) => void>();
  private connectedOnce = false;
  private up = false;
  reconnects = 0;

  constructor(databaseUrl: string, private readonly log: Logger, private readonly onReconnect: () => void = () => undefined) {
    const createSubscriber = (pgListen as unknown as { default: typeof pgListen.default }).default ?? pgListen;
    this.sub = createSubscriber(
      { connectionString: databaseUrl },
      { retryTimeout: Infinity, retryInterval: (attempt) => Math.min(2000, 100 * 2 ** attempt), paranoidChecking: 10_000, parse: (s) => s, serialize: (s) => String(s) },
    );
    this.sub.events.on("notification", ({ channel, payload }) => this.handlers.get(channel)?.(payload ?? ""));
    this.sub.events.on("error", (err) => {
      this.up = false;
      log.error({ err }, "listener connection error");
    });
    this.sub.events.on("reconnect", (attempt) => {
      this.up = false;
      log.warn({ attempt }, "listener reconnecting");
    });
    // pg-listen says "connected" once every channel is LISTENed again.
    this.sub.events.on("connected", () => {
      this.up = true;
      if (!this.connectedOnce) return;
      this.reconnects++;
      listenerReconnects.inc();
      log.info("listener reconnected");
      this.onReconnect();
    });
  }

  async connect(): Promise<void> {
    await this.sub.connect();
    this.connectedOnce = true;
    this.up = true;
  }

  /**
   * LISTEN on `channel`; resolves once the server has it (so a NOTIFY after this is heard).
   * Rejects, forgetting the channel, when the connection is away (or does not answer within
   * `timeoutMs`): a caller must never wait on a channel that is not listened to.
   */
  async listen(channel: string, handler: (payload: string) => void, timeoutMs = 5000): Promise<void> {
    this.handlers.set(channel, handler);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.sub.listenTo(channel),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`LISTEN ${channel} got no answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } catch (err) {
      this.handlers.delete(channel);
      // pg-listen remembers the channel before LISTEN answers (to re-LISTEN after a reconnect)
      Promise.resolve(this.sub.unlisten(channel)).catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async unlisten(channel: string): Promise<void> {
    this.handlers.delete(channel);
    await this.sub.unlisten(channel);
  }

  /** False from a connection error until every channel is LISTENed again. */
  get connected(): boolean {
    return this.up;
  }

  /** The channels LISTENed to (also re-LISTENed after a reconnect). */
  get channels(): number {
    return this.sub.getSubscribedChannels().length;
  }

  async close(): Promise<void> {
    await this.sub.close();
  }
}
