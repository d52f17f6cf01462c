// Trigger management through the admin API (create, validate, list, show, enable, disable,
// delete, role checks on every endpoint), the retry policy arithmetic, and the one-transaction
// rule for a KV write and its trigger rows, against a real Postgres.
import test from "ava";
import { loadConfig } from "../lib/config.ts";
import { sql } from "../lib/db/pool.ts";
import { applyKvWrites } from "../lib/kv/index.ts";
import { createLogger } from "../lib/log.ts";
import { retryDelayMs } from "../lib/outbox/retry.ts";
import { effectivePolicy, globMatches } from "../lib/triggers/index.ts";
import { scopedToken, startGateway, team, type Gateway, type Team } from "./helpers/http.ts";

let g: Gateway;
let T: Team;
let scriptId: string;
let foreignScript: string;
const V1 = "/api/v1/admin";
const TR = `${V1}/apps/shop/triggers`;

test.before(async () => {
  g = await startGateway({ PICLOUD_TRIGGER_RETRY_MAX_ATTEMPTS: "4", PICLOUD_TRIGGER_RETRY_BASE_MS: "250" });
  T = await team(g, "shop");
  scriptId = (await g.api(T.editor.token).post(`${V1}/apps/shop/scripts`, { name: "on-change", source: "export default (ctx) => ctx.event" })).body.id;
  await g.api(T.outsider.token).post(`${V1}/apps`, { slug: "elsewhere", name: "E" });
  foreignScript = (await g.api(T.outsider.token).post(`${V1}/apps/elsewhere/scripts`, { name: "theirs", source: "export default () => 1" })).body.id;
});
test.after.always(() => g?.close());

test("create a KV trigger: 201 with its fields, who registered it, and the effective retry policy", async (t) => {
  const r = await g.api(T.appAdmin.token).post(`${TR}/kv`, { script_id: scriptId, collection_glob: "orders*", ops: ["insert", "update", "insert"], retry: { max_attempts: 5, backoff: "linear" } });
  t.is(r.status, 201, JSON.stringify(r.body));
  t.like(r.body, { app_id: T.appId, script_id: scriptId, kind: "kv", collection_glob: "orders*", ops: ["insert", "update"], enabled: true, created_by: T.appAdmin.id });
  t.deepEqual(r.body.retry, { max_attempts: 5, backoff: "linear" });
  t.deepEqual(r.body.effective_retry, { max_attempts: 5, backoff: "linear", base_ms: 250, jitter_pct: 20 });
  const dflt = await g.api(T.owner).post(`${TR}/kv`, { script_id: scriptId, collection_glob: "*", ops: ["delete"] });
  t.is(dflt.status, 201);
  t.is(dflt.body.retry, null);
  t.deepEqual(dflt.body.effective_retry, { max_attempts: 4, backoff: "exponential", base_ms: 250, jitter_pct: 20 });
  const dl = await g.api(T.appAdmin.token).post(`${TR}/dead_letter`, { script_id: scriptId, retry: { max_attempts: 1 } });
  t.is(dl.status, 201);
  t.like(dl.body, { kind: "dead_letter", collection_glob: null, ops: null, created_by: T.appAdmin.id });
});

test.serial("validation: 400 naming the field, nothing created", async (t) => {
  const api = g.api(T.appAdmin.token);
  const before = await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM triggers`);
  const kv = { script_id: scriptId, collection_glob: "*", ops: ["insert"] };
  const cases: [string, unknown, string][] = [
    ["kv", { ...kv, retry: { max_attempts: 0 } }, "retry.max_attempts"],
    ["kv", { ...kv, retry: { max_attempts: 101 } }, "retry.max_attempts"],
    ["kv", { ...kv, retry: { max_attempts: 2.5 } }, "retry.max_attempts"],
    ["kv", { ...kv, retry: { backoff: "fibonacci" } }, "retry.backoff"],
    ["kv", { ...kv, retry: { base_ms: -1 } }, "retry.base_ms"],
    ["kv", { ...kv, retry: { jitter_pct: 101 } }, "retry.jitter_pct"],
    ["kv", { ...kv, retry: { jitter: 5 } }, "retry.jitter"],
    ["kv", { ...kv, retry: "fast" }, "retry"],
    ["kv", { ...kv, collection_glob: "a*b" }, "collection_glob"],
    ["kv", { ...kv, collection_glob: "**" }, "collection_glob"],
    ["kv", { ...kv, collection_glob: "" }, "collection_glob"],
    ["kv", { ...kv, collection_glob: 7 }, "collection_glob"],
    ["kv", { script_id: scriptId, ops: ["insert"] }, "collection_glob"],
    ["kv", { ...kv, ops: [] }, "ops"],
    ["kv", { ...kv, ops: ["upsert"] }, "ops.0"],
    ["kv", { ...kv, ops: "insert" }, "ops"],
    ["kv", { ...kv, script_id: "nope" }, "script_id"],
    ["kv", { ...kv, script_id: foreignScript }, "script_id"],
    ["kv", { ...kv, script_id: "00000000-0000-4000-8000-000000000000" }, "script_id"],
    ["kv", { ...kv, extra: 1 }, "extra"],
    ["dead_letter", { script_id: scriptId, collection_glob: "*" }, "collection_glob"],
    ["dead_letter", { script_id: scriptId, retry: { backoff: "x" } }, "retry.backoff"],
    ["dead_letter", {}, "script_id"],
  ];
  for (const [kind, payload, field] of cases) {
    const r = await api.post(`${TR}/${kind}`, payload);
    t.is(r.status, 400, `${field}: ${JSON.stringify(r.body)}`);
    t.is(r.body.field, field, JSON.stringify(payload));
  }
  // another app's script: no word on whether it exists
  t.is((await api.post(`${TR}/kv`, { ...kv, script_id: foreignScript })).body.message, "script_id: is not a script of this app");
  t.is(await g.db.oneFirst(sql.unsafe`SELECT count(*) FROM triggers`), before);
});

test("list (all, by kind), show, disable, enable, delete; another app's trigger is not found", async (t) => {
  const api = g.api(T.appAdmin.token);
  const made: string[] = [];
  for (let i = 0; i < 3; i++) made.push((await api.post(`${TR}/kv`, { script_id: scriptId, collection_glob: `list-${i}`, ops: ["insert"] })).body.id);
  const dl = (await api.post(`${TR}/dead_letter`, { script_id: scriptId })).body.id;
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const r: any = await g.api(T.viewer.token).get(`${TR}?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
    t.is(r.status, 200);
    seen.push(...r.body.items.map((x: { id: string }) => x.id));
    cursor = r.body.cursor;
  } while (cursor);
  t.true(made.every((id) => seen.includes(id)) && seen.includes(dl));
  t.is(new Set(seen).size, seen.length);
  const kvOnly = (await g.api(T.viewer.token).get(`${TR}/kv?limit=200`)).body.items;
  t.true(kvOnly.every((x: { kind: string }) => x.kind === "kv"));
  t.deepEqual((await g.api(T.viewer.token).get(`${TR}?kind=kv&limit=200`)).body.items, kvOnly);
  t.true((await g.api(T.viewer.token).get(`${TR}/dead_letter`)).body.items.some((x: { id: string }) => x.id === dl));
  t.is((await g.api(T.viewer.token).get(`${TR}?kind=cron`)).body.field, "kind");

  const id = made[0]!;
  t.like((await g.api(T.viewer.token).get(`${TR}/${id}`)).body, { id, collection_glob: "list-0", enabled: true });
  t.like((await api.post(`${TR}/${id}/disable`)).body, { id, enabled: false });
  t.false((await g.api(T.viewer.token).get(`${TR}/${id}`)).body.enabled);
  t.like((await api.post(`${TR}/${id}/enable`)).body, { id, enabled: true });
  t.is((await api.delete(`${TR}/${id}`)).status, 204);
  t.is((await api.delete(`${TR}/${id}`)).status, 404);
  t.is((await g.api(T.viewer.token).get(`${TR}/${id}`)).status, 404);
  t.is((await g.api(T.viewer.token).get(`${TR}/not-an-id`)).status, 404);

  // a trigger of another app, addressed through this one: not found
  const theirs = (await g.api(T.outsider.token).post(`${V1}/apps/elsewhere/triggers/kv`, { script_id: foreignScript, collection_glob: "*", ops: ["insert"] })).body.id;
  for (const [method, path] of [["get", `${TR}/${theirs}`], ["post", `${TR}/${theirs}/disable`], ["delete", `${TR}/${theirs}`]] as const) {
    t.is((await (api as any)[method](path)).status, 404, `${method} ${path}`);
  }
  t.true((await g.api(T.outsider.token).get(`${V1}/apps/elsewhere/triggers/${theirs}`)).body.enabled);
});

test("roles: viewers and editors read, only app_admin and the owner manage; outsiders see nothing; scopes narrow", async (t) => {
  const id = (await g.api(T.appAdmin.token).post(`${TR}/kv`, { script_id: scriptId, collection_glob: "roles", ops: ["insert"] })).body.id;
  const reads = [TR, `${TR}/kv`, `${TR}/dead_letter`, `${TR}/stats`, `${TR}/${id}`];
  const manage = (api: ReturnType<typeof g.api>) => [
    () => api.post(`${TR}/kv`, { script_id: scriptId, collection_glob: "roles", ops: ["insert"] }),
    () => api.post(`${TR}/dead_letter`, { script_id: scriptId }),
    () => api.post(`${TR}/${id}/disable`),
    () => api.post(`${TR}/${id}/enable`),
  ];
  for (const [who, token, read, write] of [
    ["viewer", T.viewer.token, 200, 403],
    ["editor", T.editor.token, 200, 403],
    ["outsider", T.outsider.token, 404, 404],
    ["app_admin", T.appAdmin.token, 200, 0],
    ["owner", T.owner, 200, 0],
  ] as const) {
    const api = g.api(token);
    for (const path of reads) t.is((await api.get(path)).status, read, `${who} GET ${path}`);
    for (const call of manage(api)) {
      const status = (await call()).status;
      if (write) t.is(status, write, who);
      else t.true(status === 200 || status === 201, `${who}: ${status}`);
    }
    if (write) t.is((await api.delete(`${TR}/${id}`)).status, write, `${who} DELETE`);
  }
  t.is((await g.api(T.appAdmin.token).delete(`${TR}/${id}`)).status, 204);
  t.is((await g.api().get(TR)).status, 401);
  const readOnly = await scopedToken(g, T.appAdmin.token, ["read"]);
  t.is((await g.api(readOnly).get(TR)).status, 200);
  t.is((await g.api(readOnly).post(`${TR}/kv`, { script_id: scriptId, collection_glob: "*", ops: ["insert"] })).status, 403);
  const exec = await scopedToken(g, T.appAdmin.token, ["execute"]);
  t.is((await g.api(exec).get(TR)).status, 403);
});

test("glob rule: * is everything, prefix* a prefix, anything else exact", (t) => {
  t.true(globMatches("*", "anything"));
  t.true(globMatches("ord*", "ord"));
  t.true(globMatches("ord*", "orders"));
  t.false(globMatches("ord*", "or"));
  t.true(globMatches("orders", "orders"));
  t.false(globMatches("orders", "orders2"));
  t.false(globMatches("orders", "Orders"));
});

test("retry delays: exponential base·2^(n-1), linear base·n, constant base, each within ± jitter", (t) => {
  const check = (backoff: "exponential" | "linear" | "constant", expected: number[]) => {
    for (const [i, base] of expected.entries()) {
      const n = i + 1;
      const policy = { backoff, base_ms: 100, jitter_pct: 20 };
      t.is(retryDelayMs(policy, n, () => 0.5), base, `${backoff} ${n}`);
      t.is(retryDelayMs(policy, n, () => 0), Math.round(base * 0.8));
      t.is(retryDelayMs(policy, n, () => 1), Math.round(base * 1.2));
      for (let k = 0; k < 200; k++) {
        const d = retryDelayMs(policy, n);
        t.true(d >= base * 0.8 - 0.5 && d <= base * 1.2 + 0.5, `${backoff} ${n}: ${d}`);
      }
      t.is(retryDelayMs({ ...policy, jitter_pct: 0 }, n), base);
    }
  };
  check("exponential", [100, 200, 400, 800]);
  check("linear", [100, 200, 300, 400]);
  check("constant", [100, 100, 100, 100]);
  const defaults = loadConfig({ PICLOUD_TRIGGER_RETRY_BACKOFF: "constant", PICLOUD_TRIGGER_RETRY_BASE_MS: "50" });
  t.deepEqual(effectivePolicy(null, defaults), { max_attempts: 3, backoff: "constant", base_ms: 50, jitter_pct: 20 });
  t.deepEqual(effectivePolicy({ jitter_pct: 0, max_attempts: 9 }, defaults), { max_attempts: 9, backoff: "constant", base_ms: 50, jitter_pct: 0 });
});

test.serial("one transaction: a KV write and its trigger rows commit together, or neither does", async (t) => {
  const api = g.api(T.appAdmin.token);
  const trig = (await api.post(`${TR}/kv`, { script_id: scriptId, collection_glob: "tx-*", ops: ["insert", "update", "delete"] })).body.id;
  const env = { config: loadConfig({ PICLOUD_MAX_TRIGGER_DEPTH: "8" }), log: createLogger("test", "silent") };
  const rows = () => g.db.oneFirst(sql.unsafe`SELECT count(*)::int FROM outbox WHERE trigger_id = ${trig}`);
  const entry = () => g.db.maybeOne(sql.unsafe`SELECT value::text FROM kv_entries WHERE app_id = ${T.appId} AND collection = 'tx-a' AND key = 'k'`);
  const cause = { depth: 1, rootExecutionId: null, executionId: null, scriptId: null };
  // rolled back after the write: nothing of either
  await t.throwsAsync(
    g.db.transaction(async (tx) => {
      await applyKvWrites(tx, [{ appId: T.appId, collection: "tx-a", key: "k", json: "1", ttlSecs: null, cause }], env);
      t.is(await tx.oneFirst(sql.unsafe`SELECT count(*)::int FROM outbox WHERE trigger_id = ${trig}`), 1);
      throw new Error("the rest of the transaction failed");
    }),
    { message: "the rest of the transaction failed" },
  );
  t.is(await rows(), 0);
  t.is(await entry(), null);
  // committed: both, with the event, lineage and depth
  const results = await g.db.transaction((tx) =>
    applyKvWrites(
      tx,
      [
        { appId: T.appId, collection: "tx-a", key: "k", json: '{"v":1}', ttlSecs: null, cause },
        { appId: T.appId, collection: "tx-a", key: "k", json: '{"v":2}', ttlSecs: null, cause },
        { appId: T.appId, collection: "tx-a", key: "k", json: null, ttlSecs: null, cause },
        { appId: T.appId, collection: "tx-a", key: "k", json: null, ttlSecs: null, cause },
        { appId: T.appId, collection: "no-match", key: "k", json: "1", ttlSecs: null, cause },
      ],
      env,
    ),
  );
  t.deepEqual(results.map((r) => r?.op ?? null), ["insert", "update", "delete", null, "insert"]);
  const queued = await g.db.any(sql.unsafe`SELECT kind, payload, trigger_depth, root_execution_id, id, max_attempts, retry FROM outbox WHERE trigger_id = ${trig} ORDER BY created_at, payload->'event'->>'op'`);
  t.is(queued.length, 3);
  const events = queued.map((q: any) => q.payload.event);
  t.deepEqual(
    events.map((e: any) => JSON.stringify([e.op, e.value, e.old_value])).sort(),
    [JSON.stringify(["insert", { v: 1 }, null]), JSON.stringify(["update", { v: 2 }, { v: 1 }]), JSON.stringify(["delete", null, { v: 2 }])].sort(),
  );
  for (const q of queued as any[]) {
    t.like(q, { kind: "kv", trigger_depth: 1, max_attempts: 3 });
    t.like(q.payload.event, { type: "kv", collection: "tx-a", key: "k" });
    t.is(q.root_execution_id, q.id, "a write with no causing execution starts its own lineage");
    t.deepEqual(q.retry, { backoff: "exponential", base_ms: 1000, jitter_pct: 20 });
  }
  await g.db.query(sql.unsafe`DELETE FROM outbox WHERE trigger_id = ${trig}`);
  // a disabled trigger fires nothing
  await api.post(`${TR}/${trig}/disable`);
  await g.db.transaction((tx) => applyKvWrites(tx, [{ appId: T.appId, collection: "tx-b", key: "k", json: "1", ttlSecs: null, cause }], env));
  t.is(await rows(), 0);
});
