import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

// scrypt from node:crypto; the parameters are stored in the hash, so they can be raised later.
const N = 16384, r = 8, p = 1, KEYLEN = 32;

function derive(password: string, salt: Buffer, opts: ScryptOptions, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password.normalize("NFKC"), salt, keylen, { ...opts, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, { N, r, p }, KEYLEN);
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

// Checked against when the email is unknown, so a miss costs as much as a wrong password.
const DUMMY = `scrypt$${N}$${r}$${p}$${Buffer.alloc(16).toString("base64url")}$${Buffer.alloc(KEYLEN).toString("base64url")}`;

/** Constant-time comparison; always runs the KDF (pass undefined for an unknown user). */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const [kind, n, rr, pp, salt, hash] = (stored ?? DUMMY).split("$");
  if (kind !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await derive(password, Buffer.from(salt, "base64url"), { N: Number(n), r: Number(rr), p: Number(pp) }, expected.length);
  return timingSafeEqual(key, expected) && stored !== undefined;
}
