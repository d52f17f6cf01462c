import { sql, type Db } from "../db/pool.ts";

/**
 * The sync caller stopped waiting (timeout or disconnect). A row no dispatcher took yet is
 * deleted, so it never runs; a running one is marked, and its result is kept as an abandoned
 * execution when it completes. Returns whether the row was deleted before running.
 */
export async function abandonSync(db: Db, id: string): Promise<"deleted" | "marked" | "gone"> {
  const deleted = await db.query(sql.unsafe`DELETE FROM outbox WHERE id = ${id} AND claimed_by IS NULL`);
  if (deleted.rowCount) return "deleted";
  const marked = await db.query(sql.unsafe`UPDATE outbox SET abandoned = true WHERE id = ${id}`);
  return marked.rowCount ? "marked" : "gone";
}
