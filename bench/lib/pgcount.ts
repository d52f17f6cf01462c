// A counting proxy for the Postgres wire protocol (no TLS): it forwards bytes unchanged between
// its clients and the server and counts, per statement text, the statements run (a simple Query,
// or an Execute of whatever the last Bind named), the Parse messages (each one is a parse and a
// plan on the server: unnamed statements are parsed and planned on every run), and the
// notifications the server delivered to clients. Used by bench/spine-statements.ts to say how
// many round trips an execution costs, without pg_stat_statements or the server's log.
import net from "node:net";

export type StatementCount = { runs: number; parses: number };
export type Counts = { statements: Map<string, StatementCount>; notifications: number; connections: number };

/** The first words of a statement, whitespace folded; LISTEN/UNLISTEN channels and literals shortened. */
export function statementKey(text: string): string {
  const t = text.replace(/\s+/g, " ").trim();
  const listen = /^(UNLISTEN|LISTEN) "?([a-z_]+?)(_[0-9a-f]{8,}|_\d+)?"?$/i.exec(t);
  if (listen) return `${listen[1]!.toUpperCase()} ${listen[2]}${listen[3] ? "_<id>" : ""}`;
  return t.slice(0, 48);
}

export async function startCountingProxy(target: { host: string; port: number }): Promise<{ port: number; counts: Counts; reset(): void; close(): Promise<void> }> {
  let counts: Counts = { statements: new Map(), notifications: 0, connections: 0 };
  const count = (key: string, field: keyof StatementCount) => {
    const c = counts.statements.get(key) ?? { runs: 0, parses: 0 };
    c[field]++;
    counts.statements.set(key, c);
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counts.connections++;
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const named = new Map<string, string>(); // prepared statement name → text ("" = unnamed)
    let bound = "";
    let startup = true;
    const frontend = reader((type, body) => {
      if (type === 0x50 /* P */) {
        const [name, rest] = cstring(body, 0);
        const [text] = cstring(body, rest);
        named.set(name, text);
        count(statementKey(text), "parses");
      } else if (type === 0x42 /* B */) {
        const [, rest] = cstring(body, 0);
        const [stmt] = cstring(body, rest);
        bound = named.get(stmt) ?? "?";
      } else if (type === 0x45 /* E */) count(statementKey(bound), "runs");
      else if (type === 0x51 /* Q */) {
        const key = statementKey(cstring(body, 0)[0]);
        count(key, "runs");
        count(key, "parses");
      }
    });
    const backend = reader((type) => {
      if (type === 0x41 /* A */) counts.notifications++;
    });
    client.on("data", (d: Buffer) => {
      if (startup) {
        // The startup message has no type byte: its length, then the protocol version.
        startup = false;
        const len = d.readInt32BE(0);
        frontend(d.subarray(len));
      } else frontend(d);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      backend(d);
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get counts() {
      return counts;
    },
    reset() {
      counts = { statements: new Map(), notifications: 0, connections: counts.connections };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Splits a byte stream into protocol messages (type byte, int32 length including itself). */
function reader(onMessage: (type: number, body: Buffer) => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 5) {
      const len = buf.readInt32BE(at + 1);
      if (buf.length - at < 1 + len) break;
      onMessage(buf[at]!, buf.subarray(at + 5, at + 1 + len));
      at += 1 + len;
    }
    buf = buf.subarray(at);
  };
}

function cstring(b: Buffer, from: number): [string, number] {
  const end = b.indexOf(0, from);
  return [b.toString("utf8", from, end), end + 1];
}
