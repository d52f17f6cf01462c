// Floor worker for bench/spine: LISTEN for new rows, claim a batch with FOR UPDATE SKIP LOCKED,
// reply with one NOTIFY per row on the row's reply_to channel (payload: the row's req), delete
// the batch. No HTTP, no QuickJS, no bookkeeping: what a bare Postgres request/reply costs.
import pg from "pg";

const url = process.env.DATABASE_URL!;
const listen = new pg.Client({ connectionString: url });
const work = new pg.Pool({ connectionString: url, max: 4 });
await listen.connect();
let pumping = false;
let again = false;
async function pump(): Promise<void> {
  if (pumping) {
    again = true;
    return;
  }
  pumping = true;
  try {
    for (;;) {
      const { rows } = await work.query<{ id: string; reply_to: string; req: string }>(
        `WITH c AS (SELECT id FROM rr WHERE NOT claimed ORDER BY id LIMIT 32 FOR UPDATE SKIP LOCKED)
         UPDATE rr SET claimed = true FROM c WHERE rr.id = c.id RETURNING rr.id, rr.reply_to, rr.req`,
      );
      if (!rows.length) break;
      await work.query(
        `WITH d AS (DELETE FROM rr WHERE id = ANY($1::bigint[]))
         SELECT pg_notify(c, p) FROM unnest($2::text[], $3::text[]) AS x(c, p)`,
        [rows.map((r) => r.id), rows.map((r) => r.reply_to), rows.map((r) => r.req)],
      );
    }
  } finally {
    pumping = false;
    if (again) {
      again = false;
      void pump();
    }
  }
}
listen.on("notification", () => void pump());
await listen.query("LISTEN rr_new");
process.send?.("ready");
process.on("SIGTERM", () => process.exit(0));
