-- The key-value store, triggers and dead letters (SPEC sections 5 and 6).

-- One row per live (or expired, not yet swept) key. Names and keys use the "C" collation: keys
-- list in byte order of their UTF-8 (code-point order) whatever the server's locale, and a prefix
-- lookup is an index range. Values are kept as the JSON text the script wrote (json, not jsonb:
-- an object's keys come back in the order they were written).
CREATE TABLE kv_entries (
  app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  collection text COLLATE "C" NOT NULL CHECK (collection <> ''),
  key        text COLLATE "C" NOT NULL CHECK (key <> ''),
  value      json NOT NULL,
  expires_at timestamptz,                  -- NULL: never; a row past it is invisible at once, deleted by the sweeper
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (app_id, collection, key)
);
CREATE INDEX kv_entries_expiring ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;

-- Applies writes in order and says what each did: op 'insert' (the key was absent or expired),
-- 'update' (it was live; old_value is what it held), 'delete' (a live key was removed), or no row
-- for a delete of an absent key. One round trip for a whole batch, and exact under concurrency
-- (Postgres 15 has no RETURNING OLD): a present row is locked before it is read, and an insert
-- that loses a race for the key goes round again as an update.
CREATE FUNCTION kv_apply(p_app uuid[], p_collection text[], p_key text[], p_value text[], p_ttl_secs integer[])
RETURNS TABLE (idx integer, op text, old_value json)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  i integer;
  prev json;
  prev_expires timestamptz;
  live boolean;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_key, 1), 0) LOOP
    IF p_value[i] IS NULL THEN
      DELETE FROM kv_entries e
      WHERE e.app_id = p_app[i] AND e.collection = p_collection[i] AND e.key = p_key[i]
      RETURNING e.value, e.expires_at INTO prev, prev_expires;
      IF FOUND AND (prev_expires IS NULL OR prev_expires > now()) THEN
        idx := i; op := 'delete'; old_value := prev;
        RETURN NEXT;
      END IF;
      CONTINUE;
    END IF;
    LOOP
      SELECT e.value, e.expires_at INTO prev, prev_expires FROM kv_entries e
      WHERE e.app_id = p_app[i] AND e.collection = p_collection[i] AND e.key = p_key[i]
      FOR UPDATE;
      IF FOUND THEN
        live := prev_expires IS NULL OR prev_expires > now();
        UPDATE kv_entries e
        SET value = p_value[i]::json,
            expires_at = CASE WHEN p_ttl_secs[i] IS NULL THEN NULL ELSE now() + p_ttl_secs[i] * interval '1 second' END,
            updated_at = now(),
            created_at = CASE WHEN live THEN e.created_at ELSE now() END
        WHERE e.app_id = p_app[i] AND e.collection = p_collection[i] AND e.key = p_key[i];
        idx := i;
        IF live THEN op := 'update'; old_value := prev; ELSE op := 'insert'; old_value := NULL; END IF;
        RETURN NEXT;
        EXIT;
      END IF;
      INSERT INTO kv_entries (app_id, collection, key, value, expires_at)
      VALUES (p_app[i], p_collection[i], p_key[i], p_value[i]::json,
              CASE WHEN p_ttl_secs[i] IS NULL THEN NULL ELSE now() + p_ttl_secs[i] * interval '1 second' END)
      ON CONFLICT DO NOTHING;
      IF FOUND THEN
        idx := i; op := 'insert'; old_value := NULL;
        RETURN NEXT;
        EXIT;
      END IF;
    END LOOP;
  END LOOP;
END
$$;

-- Triggers: a script run for each matching KV write (kind 'kv') or each new dead letter of the
-- app (kind 'dead_letter'). Executions run as the user who registered the trigger.
CREATE TABLE triggers (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id          uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  script_id       uuid NOT NULL REFERENCES scripts (id) ON DELETE CASCADE,
  kind            text NOT NULL CHECK (kind IN ('kv', 'dead_letter')),
  collection_glob text COLLATE "C",        -- kv: '*', 'prefix*' or an exact collection name
  ops             text[],                  -- kv: among insert, update, delete
  retry           jsonb,                   -- the override as given ({max_attempts, backoff, base_ms, jitter_pct}, any subset)
  enabled         boolean NOT NULL DEFAULT true,
  created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'kv') = (collection_glob IS NOT NULL)),
  CHECK ((kind = 'kv') = (ops IS NOT NULL)),
  CHECK (ops IS NULL OR (cardinality(ops) > 0 AND ops <@ ARRAY['insert', 'update', 'delete']))
);
CREATE INDEX triggers_app ON triggers (app_id, created_at, id);
CREATE INDEX triggers_script ON triggers (script_id);

-- Trigger rows dropped for going past PICLOUD_MAX_TRIGGER_DEPTH, counted per app.
CREATE TABLE trigger_drops (
  app_id                 uuid PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
  depth_exceeded         bigint NOT NULL DEFAULT 0,
  last_dropped_at        timestamptz,
  last_root_execution_id uuid
);

-- An outbox row whose last attempt failed, written in the transaction that removed it from the
-- outbox. Resolution: NULL (open), 'replayed', 'ignored', or 'handler_failed' (a dead-letter
-- trigger's handler failed on it; still open).
CREATE TABLE dead_letters (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id              uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
  execution_id        uuid NOT NULL,       -- the failed execution (its outbox row's id)
  kind                text NOT NULL,       -- the failed row's kind: http_async, kv, replay
  script_id           uuid REFERENCES scripts (id) ON DELETE SET NULL,
  trigger_id          uuid,                -- no foreign key: the dead letter outlives its trigger
  route_id            uuid,
  payload             jsonb NOT NULL,
  attempts            integer NOT NULL,
  max_attempts        integer NOT NULL,
  retry               jsonb,               -- the failed row's policy, reused by a replay
  last_error          jsonb NOT NULL,
  handler_error       jsonb,               -- handler_failed: the dead-letter handler's last error
  trigger_depth       integer NOT NULL,
  root_execution_id   uuid,
  first_failed_at     timestamptz NOT NULL,
  last_failed_at      timestamptz NOT NULL,
  resolution          text CHECK (resolution IN ('replayed', 'ignored', 'handler_failed')),
  resolved_by         uuid REFERENCES users (id) ON DELETE SET NULL,
  resolved_at         timestamptz,
  replay_execution_id uuid,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_app ON dead_letters (app_id, created_at DESC, id DESC);
CREATE INDEX dead_letters_open ON dead_letters (app_id) WHERE resolution IS NULL OR resolution = 'handler_failed';
CREATE INDEX dead_letters_created ON dead_letters (created_at);
