// pm2 process file. The same file serves every host of a cluster sharing one Postgres:
//   PICLOUD_ROLES        which processes run here (default gateway,dispatcher,sweeper)
//   PICLOUD_DISPATCHERS  how many dispatcher processes run here (default 2)
// Processes run the bundles in dist/ with plain node (`npm run build` writes them; `npm start`
// builds first by itself); DATABASE_URL and PICLOUD_* pass through the environment.
const roles = (process.env.PICLOUD_ROLES || "gateway,dispatcher,sweeper")
  .split(",")
  .map((r) => r.trim())
  .filter(Boolean);
const known = ["gateway", "dispatcher", "sweeper"];
for (const r of roles) {
  if (!known.includes(r)) throw new Error(`PICLOUD_ROLES: unknown role "${r}" (accepted: ${known.join(", ")})`);
}
const dispatchers = process.env.PICLOUD_DISPATCHERS === undefined ? 2 : Number(process.env.PICLOUD_DISPATCHERS);
if (!Number.isInteger(dispatchers) || dispatchers < 1 || dispatchers > 64) {
  throw new Error(`PICLOUD_DISPATCHERS="${process.env.PICLOUD_DISPATCHERS}" is not valid: expected an integer from 1 to 64`);
}
const shutdownMs = Number(process.env.PICLOUD_SHUTDOWN_TIMEOUT_MS || 10000);

const service = (name, extra = {}) => ({
  name,
  script: `dist/${name}.js`,
  interpreter: "node",
  // lib/layout.ts BUNDLE_NODE_ARGS says why (source maps; a young generation that stays small).
  interpreter_args: "--enable-source-maps --max-semi-space-size=4 --heap-growing-percent=50",
  exec_mode: "fork",
  cwd: __dirname,
  // A process must finish or release its work within PICLOUD_SHUTDOWN_TIMEOUT_MS; pm2 waits a little longer.
  kill_timeout: shutdownMs + 2000,
  // Each process sends "ready" once it serves (migrations applied, connected, listening).
  wait_ready: true,
  listen_timeout: 60000,
  max_memory_restart: "300M",
  restart_delay: 1000,
  exp_backoff_restart_delay: 200,
  ...extra,
});

module.exports = {
  apps: [
    roles.includes("gateway") && service("gateway"),
    roles.includes("dispatcher") && service("dispatcher", { instances: dispatchers }),
    roles.includes("sweeper") && service("sweeper"),
  ].filter(Boolean),
};
