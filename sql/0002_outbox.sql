-- The outbox: every pending execution, whatever caused it. A row's id is its execution's id.
CREATE TABLE outbox (
  id                uuid PRIMARY KEY,
  kind              text NOT NULL CHECK (kind IN ('http_sync', 'http_async', 'kv', 'dead_letter', 'replay')),
  app_id            uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  script_id         uuid NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
  route_id          uuid,
  trigger_id        uuid,
  payload           jsonb NOT NULL,          -- {request} for routes, {event} for triggers
  reply_to          text,                    -- sync: the waiting gateway's NOTIFY channel
  abandoned         boolean NOT NULL DEFAULT false,  -- sync: the caller stopped waiting
  attempts          integer NOT NULL DEFAULT 0,      -- counted at claim
  max_attempts      integer NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
  retry             jsonb,                   -- {backoff, base_ms, jitter_pct}
  run_at            timestamptz NOT NULL DEFAULT now(),
  trigger_depth     integer NOT NULL DEFAULT 0,
  root_execution_id uuid,
  claimed_by        text,                    -- dispatcher id
  lease_until       timestamptz,
  last_error        jsonb,
  first_failed_at   timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now()
);
-- Serves the claim query exactly: ready rows in run_at order, unclaimed only.
CREATE INDEX outbox_ready ON outbox (run_at, id) WHERE claimed_by IS NULL;
-- Serves the sweeper's stale-claim scan.
CREATE INDEX outbox_claimed ON outbox (claimed_by, lease_until) WHERE claimed_by IS NOT NULL;

-- Dispatcher liveness; the sweeper recovers the claims of one that stopped heartbeating.
CREATE TABLE dispatchers (
  id           text PRIMARY KEY,
  host         text NOT NULL,
  pid          integer NOT NULL,
  concurrency  integer NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Async routes: the first execution for a route + Idempotency-Key (kept 24 h).
CREATE TABLE idempotency_keys (
  route_id     uuid NOT NULL,
  key          text NOT NULL,
  execution_id uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (route_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Sync executions that completed after their caller stopped waiting.
CREATE TABLE abandoned_executions (
  id           uuid PRIMARY KEY,            -- the execution id
  app_id       uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  script_id    uuid REFERENCES scripts (id) ON DELETE SET NULL,
  route_id     uuid,
  request      jsonb NOT NULL,
  status       text NOT NULL CHECK (status IN ('succeeded', 'failed')),
  response     jsonb,
  error        jsonb,
  queued_at    timestamptz NOT NULL,
  completed_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
CREATE INDEX abandoned_executions_app ON abandoned_executions (app_id, completed_at DESC, id DESC);
CREATE INDEX abandoned_executions_completed ON abandoned_executions (completed_at);
