// The admin API as the spine benches use it: an owner, the app "bench", and the trivial script
// `export default () => ({ ok: true })` behind /sync and/or /async.

/** POSTs JSON to the admin API on loopback; throws on anything but 2xx. */
export function adminApi(port: number) {
  return async (path: string, body: unknown, token?: string): Promise<Record<string, string>> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, string>;
  };
}

/** Bootstraps the owner and deploys the bench script behind a route per mode (`/sync`, `/async`). */
export async function deployBenchRoutes(port: number, modes: ("sync" | "async")[]): Promise<void> {
  const api = adminApi(port);
  const { token } = await api("/api/v1/admin/bootstrap", { email: "bench@example.com", password: "bench-password" });
  await api("/api/v1/admin/apps", { slug: "bench", name: "Bench" }, token);
  for (const mode of modes) {
    const s = await api("/api/v1/admin/apps/bench/scripts", { name: mode, source: "export default () => ({ ok: true })" }, token);
    await api(`/api/v1/admin/scripts/${s.id}/routes`, { path: `/${mode}`, dispatch_mode: mode }, token);
  }
}
