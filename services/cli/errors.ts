// The CLI's failures and their exit codes (docs/cli.md): a script or a person reading $? can
// tell "you typed it wrong" from "the server said no" from "there is no server".
export const EXIT = { ok: 0, api: 1, usage: 2, unreachable: 3 } as const;

export class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

/** Wrong or missing arguments, found before anything was sent. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(EXIT.usage, message);
  }
}

/** The server answered with an error: its status, `error` code and message. */
export class ApiError extends CliError {
  constructor(readonly status: number, readonly body: unknown) {
    super(EXIT.api, describeRefusal(status, body));
  }
}

/** No answer from the server (refused, unknown host, timeout). */
export class UnreachableError extends CliError {
  constructor(url: string, reason: string) {
    super(EXIT.unreachable, `cannot reach picloud at ${url}: ${reason}`);
  }
}

function describeRefusal(status: number, body: unknown): string {
  if (body && typeof body === "object" && "message" in body) {
    const b = body as { error?: unknown; message?: unknown };
    return `${String(b.message)} (HTTP ${status}${typeof b.error === "string" ? ` ${b.error}` : ""})`;
  }
  const text = typeof body === "string" ? body.trim().slice(0, 200) : "";
  return `the server answered HTTP ${status}${text ? `: ${text}` : ""}`;
}
