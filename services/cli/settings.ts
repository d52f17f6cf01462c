// Where the CLI finds its server and token: PICLOUD_URL / PICLOUD_TOKEN in the environment win
// over the config file that `picloud login` writes (PICLOUD_CONFIG, else
// ~/.config/picloud/config.json, mode 0600 since it holds a token). The one place the CLI reads
// the environment.
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { UsageError } from "./errors.ts";

export const DEFAULT_URL = "http://localhost:8080";

export type Saved = { url?: string; token?: string; email?: string };

export const env = {
  configPath: (): string => process.env.PICLOUD_CONFIG || path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config"), "picloud", "config.json"),
  url: (): string | undefined => process.env.PICLOUD_URL || undefined,
  token: (): string | undefined => process.env.PICLOUD_TOKEN || undefined,
  password: (): string | undefined => process.env.PICLOUD_PASSWORD || undefined,
};

export async function readSaved(): Promise<Saved> {
  const file = env.configPath();
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new UsageError(`cannot read the config file ${file}: ${(err as Error).message}`);
  }
  try {
    const saved = JSON.parse(text) as unknown;
    if (saved && typeof saved === "object" && !Array.isArray(saved)) return saved as Saved;
  } catch {
    /* reported below */
  }
  throw new UsageError(`the config file ${file} is not a JSON object: fix it or run picloud login again`);
}

/** Written whole to a temporary file, then renamed: a crash never leaves half a config. */
export async function save(saved: Saved): Promise<string> {
  const file = env.configPath();
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(saved, null, 2) + "\n", { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return file;
}

/** The server URL: --url, else PICLOUD_URL, else the saved one, else localhost:8080. */
export function serverUrl(flag: string | undefined, saved: Saved): string {
  const raw = flag ?? env.url() ?? saved.url ?? DEFAULT_URL;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--url: ${raw} is not a URL (e.g. http://localhost:8080)`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UsageError(`--url: ${raw} must be an http:// or https:// URL`);
  return u.origin + u.pathname.replace(/\/+$/, "");
}
