/**
 * A Postgres error about the data (SQLSTATE classes 22, 23, 2B, 42, 54), not about the
 * connection: the statement did not commit, and sending it again unchanged fails again. Batches
 * split on these so that one refused row fails alone.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code ?? (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === "string" && code.length === 5 && ["22", "23", "2B", "42", "54"].includes(code.slice(0, 2));
}
