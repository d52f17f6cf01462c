// bootstrap (the first user, once per instance) and login: both save the server URL and the
// token they get to the config file, so later commands need neither.
import type { Command, Run } from "../command.ts";
import { UsageError } from "../errors.ts";
import { fields, when } from "../output.ts";
import { env, save } from "../settings.ts";

const credentials = {
  email: { type: "string", help: "your email" },
  password: { type: "string", help: "your password (better: PICLOUD_PASSWORD, or leave both out on a terminal to be asked)" },
} as const;

type Session = { token: string; expires_at: string | null; user: { id: string; email: string; role?: string } };

async function signIn(r: Run, endpoint: "bootstrap" | "login"): Promise<void> {
  const email = r.need("email");
  const password = r.opt("password") ?? env.password() ?? (await askPassword());
  const session = await r.api.post<Session>(`/admin/${endpoint}`, { email, password });
  const file = await save({ url: r.url, token: session.token, email: session.user.email });
  r.print(session, fields([[endpoint === "bootstrap" ? "created owner" : "signed in as", session.user.email], ["server", r.url], ["token expires", when(session.expires_at)], ["saved to", file]]));
}

export const bootstrap: Command = {
  name: "bootstrap",
  summary: "Create the instance's first user (the owner) and sign in as them. Works once: after that, use login.",
  options: credentials,
  anonymous: true,
  run: (r) => signIn(r, "bootstrap"),
};

export const login: Command = {
  name: "login",
  summary: "Sign in. The server URL and a token (valid 30 days) are saved for the next commands.",
  more: "The config file is PICLOUD_CONFIG, else ~/.config/picloud/config.json (mode 0600: it holds the token).\nPICLOUD_URL and PICLOUD_TOKEN in the environment override it.",
  options: credentials,
  anonymous: true,
  run: (r) => signIn(r, "login"),
};

/** Reads a password from the terminal without echoing it. */
async function askPassword(): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) throw new UsageError("missing --password (or PICLOUD_PASSWORD; on a terminal you are asked for it)");
  process.stderr.write("password: ");
  input.setRawMode(true);
  input.resume();
  input.setEncoding("utf8");
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === "\r" || ch === "\n") {
            input.off("data", onData);
            return resolve(typed);
          }
          if (ch === "\u0003") {
            input.off("data", onData);
            return reject(new UsageError("cancelled"));
          }
          if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      input.on("data", onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write("\n");
  }
}
