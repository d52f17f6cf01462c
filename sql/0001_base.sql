-- Base schema: people and their access, apps with their scripts and routes, executions.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
  password_hash text NOT NULL,              -- scrypt$N$r$p$salt$hash
  is_owner      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (email);
-- One instance-wide owner, created by bootstrap.
CREATE UNIQUE INDEX users_single_owner ON users ((true)) WHERE is_owner;

CREATE TABLE api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL,
  token_hash   bytea NOT NULL UNIQUE,        -- sha256 of the secret; the secret is shown once
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at   timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE apps (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name       text NOT NULL,
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app_members (
  app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role       text NOT NULL CHECK (role IN ('viewer', 'editor', 'app_admin')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_members_user ON app_members (user_id);

CREATE TABLE scripts (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  name       text NOT NULL,
  source     text NOT NULL,
  version    integer NOT NULL DEFAULT 1,   -- bumped on every source/limit change; executors cache by (id, version)
  timeout_ms integer NOT NULL DEFAULT 5000 CHECK (timeout_ms BETWEEN 1 AND 300000),
  memory_mb  integer NOT NULL DEFAULT 32 CHECK (memory_mb BETWEEN 1 AND 1024),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (app_id, name)
);

CREATE TABLE routes (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id        uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  script_id     uuid NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
  host_kind     text NOT NULL CHECK (host_kind IN ('any', 'exact', 'wildcard')),
  host          text,                      -- lower-case; for wildcard the suffix after "*."
  path_kind     text NOT NULL CHECK (path_kind IN ('exact', 'prefix', 'pattern')),
  path          text NOT NULL CHECK (path LIKE '/%'),
  methods       text[],                    -- upper-case; NULL means every method
  dispatch_mode text NOT NULL DEFAULT 'sync' CHECK (dispatch_mode IN ('sync', 'async')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((host_kind = 'any') = (host IS NULL))
);
CREATE INDEX routes_script ON routes (script_id);
CREATE INDEX routes_app ON routes (app_id);

-- One row per execution, written when it finishes (queued/running are read from the outbox
-- while a row is pending there). `kind` says what caused it.
CREATE TABLE executions (
  id                uuid PRIMARY KEY,
  app_id            uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  script_id         uuid REFERENCES scripts (id) ON DELETE SET NULL,
  kind              text NOT NULL CHECK (kind IN ('direct', 'http_sync', 'http_async', 'kv', 'dead_letter', 'replay')),
  status            text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  route_id          uuid,
  trigger_id        uuid,
  trigger_depth     integer NOT NULL DEFAULT 0,
  root_execution_id uuid,
  attempts          integer NOT NULL DEFAULT 1,
  queued_at         timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  duration_ms       integer,
  response          jsonb,                 -- {status, headers, body} of a successful run
  error             jsonb,                 -- {code, message, stack?}
  logs              jsonb NOT NULL DEFAULT '[]'   -- console lines [{level, message, at}]
);
CREATE INDEX executions_app_recent ON executions (app_id, queued_at DESC, id DESC);
CREATE INDEX executions_script_recent ON executions (script_id, queued_at DESC);
CREATE INDEX executions_finished ON executions (finished_at);
