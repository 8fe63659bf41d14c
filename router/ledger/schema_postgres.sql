-- The ledger schema for PostgreSQL (docs/ledger.md); the same tables and constraints as
-- schema_sqlite.sql with native types.
CREATE TABLE IF NOT EXISTS nodes (
    node_id text PRIMARY KEY,
    daily_order_capacity integer CHECK (daily_order_capacity IS NULL OR daily_order_capacity >= 0)
);
CREATE TABLE IF NOT EXISTS positions (
    node_id text NOT NULL,
    sku text NOT NULL,
    on_hand integer NOT NULL,
    reserved integer NOT NULL DEFAULT 0,
    safety_stock integer NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, sku),
    CONSTRAINT positions_balance CHECK (on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand),
    CONSTRAINT positions_safety CHECK (safety_stock >= 0)
);
-- Planning reads the positions of an order's SKUs. (Indexes and columns are added in the DO
-- block below, only when missing: CREATE INDEX IF NOT EXISTS locks its table SHARE even when
-- the index exists, which waits for live writes when a replica starts.)
CREATE TABLE IF NOT EXISTS capacity (
    node_id text NOT NULL REFERENCES nodes (node_id),
    day date NOT NULL,
    used integer NOT NULL,
    daily_limit integer,
    PRIMARY KEY (node_id, day),
    CONSTRAINT capacity_within_limit CHECK (used >= 0 AND (daily_limit IS NULL OR used <= daily_limit))
);
-- Planning reads the slots of the days an order may ship on (index capacity_by_day, below).
CREATE TABLE IF NOT EXISTS reservations (
    reservation_id text PRIMARY KEY,
    order_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'RELEASED', 'EXPIRED')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation_lines (
    reservation_id text NOT NULL REFERENCES reservations (reservation_id),
    line_no integer NOT NULL,
    node_id text NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, line_no)
);
CREATE TABLE IF NOT EXISTS reservation_capacity (
    reservation_id text NOT NULL REFERENCES reservations (reservation_id),
    node_id text NOT NULL,
    day date NOT NULL,
    PRIMARY KEY (reservation_id, node_id, day)
);
-- Every RejectShipment that committed, numbered per reservation (seq 1, 2, ...): how many
-- rejections an order has had, and the nodes excluded from its re-routes (docs/decisions.md).
CREATE TABLE IF NOT EXISTS reservation_rejections (
    reservation_id text NOT NULL REFERENCES reservations (reservation_id),
    seq integer NOT NULL CHECK (seq >= 1),
    node_id text NOT NULL,
    request_id text NOT NULL,
    rejected_at timestamptz NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (reservation_id, seq)
);
CREATE TABLE IF NOT EXISTS idempotency (
    request_id text PRIMARY KEY,
    operation text NOT NULL CHECK (operation IN ('reserve', 'confirm', 'release', 'reject')),
    digest text NOT NULL,
    reservation_id text NOT NULL,
    created_at timestamptz NOT NULL,
    response bytea -- the serialized RPC response of a reserve call (RouteOrder), if any
);
-- Indexes, and the response column that ledgers made before it existed lack, are added only
-- when missing: CREATE INDEX IF NOT EXISTS and ALTER TABLE … ADD COLUMN IF NOT EXISTS lock
-- their table (SHARE, ACCESS EXCLUSIVE) even when there is nothing to do, so a replica
-- starting under load would wait for live transactions and deadlock with them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'positions'::regclass AND relname = 'positions_by_sku') THEN
        CREATE INDEX positions_by_sku ON positions (sku);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'capacity'::regclass AND relname = 'capacity_by_day') THEN
        CREATE INDEX capacity_by_day ON capacity (day);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'reservations'::regclass AND relname = 'reservations_held_by_expiry') THEN
        -- the sweeper reads the HELD reservations by expiry
        CREATE INDEX reservations_held_by_expiry ON reservations (expires_at)
            WHERE status = 'HELD';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'reservations'::regclass AND relname = 'reservations_by_order') THEN
        -- lookups by order (ListReservations)
        CREATE INDEX reservations_by_order ON reservations (order_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'reservations'::regclass AND relname = 'reservations_by_expiry') THEN
        -- lookups in expiry order, page by page
        CREATE INDEX reservations_by_expiry ON reservations (expires_at, reservation_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'reservation_lines'::regclass AND relname = 'reservation_lines_by_node') THEN
        -- lookups by node
        CREATE INDEX reservation_lines_by_node ON reservation_lines (node_id, reservation_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'idempotency'::regclass
                   AND attname = 'response' AND NOT attisdropped) THEN
        ALTER TABLE idempotency ADD COLUMN response bytea;
    END IF;
    -- RejectShipment's records (operation 'reject'), in ledgers made before it existed
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'idempotency'::regclass
               AND conname = 'idempotency_operation_check'
               AND pg_get_constraintdef(oid) NOT LIKE '%reject%') THEN
        ALTER TABLE idempotency DROP CONSTRAINT idempotency_operation_check;
        ALTER TABLE idempotency ADD CONSTRAINT idempotency_operation_check
            CHECK (operation IN ('reserve', 'confirm', 'release', 'reject'));
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS feed_positions (
    feed text NOT NULL,
    node_id text NOT NULL,
    sequence bigint NOT NULL CHECK (sequence >= 0),
    PRIMARY KEY (feed, node_id)
);
CREATE TABLE IF NOT EXISTS feed_counters (
    name text PRIMARY KEY,
    value bigint NOT NULL CHECK (value >= 0)
);
-- Seed rows are inserted only when missing: ON CONFLICT DO NOTHING alone would wait for a
-- live transaction that updates the row (a replica starting under load). Schema creation is
-- serialised by an advisory lock, so the NOT EXISTS read cannot race another start.
INSERT INTO feed_counters (name, value)
    SELECT wanted.name, 0
    FROM unnest(ARRAY['applied', 'stale', 'duplicate', 'clamped_units']) AS wanted (name)
    WHERE NOT EXISTS (SELECT 1 FROM feed_counters AS f WHERE f.name = wanted.name)
    ON CONFLICT (name) DO NOTHING;
-- Rule-set versions (docs/ledger.md): numbered 1, 2, 3 … without gaps, unique by digest,
-- never changed or deleted once stored.
CREATE TABLE IF NOT EXISTS rule_versions (
    version integer PRIMARY KEY CHECK (version >= 1),
    name text NOT NULL CHECK (name <> ''),
    document text NOT NULL CHECK (document <> ''),
    digest text NOT NULL UNIQUE,
    published_at timestamptz NOT NULL,
    published_by text NOT NULL CHECK (published_by <> ''),
    reason text NOT NULL,
    lint text NOT NULL DEFAULT ''
);
-- Which version is active: the activation with the highest seq. Append-only; each row's
-- previous is the version of the row before it.
CREATE TABLE IF NOT EXISTS rule_activations (
    seq integer PRIMARY KEY CHECK (seq >= 1),
    version integer NOT NULL REFERENCES rule_versions (version),
    action text NOT NULL CHECK (action IN ('activate', 'rollback')),
    activated_at timestamptz NOT NULL,
    activated_by text NOT NULL CHECK (activated_by <> ''),
    reason text NOT NULL CHECK (reason <> ''),
    previous integer REFERENCES rule_versions (version),
    CONSTRAINT rule_activations_changes CHECK (previous IS NULL OR previous <> version),
    CONSTRAINT rule_activations_rollback CHECK (action = 'activate' OR previous IS NOT NULL)
);
-- Refuses the change its trigger fires on; the message is the trigger's argument. Errors
-- carry SQLSTATE 23000 (integrity_constraint_violation), like a failed constraint.
CREATE OR REPLACE FUNCTION rule_history_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;
-- A new version must be the next number with a digest not stored yet; a new activation
-- the next seq, with previous the version active until now. (The ledger takes an advisory
-- lock before it reads them.) The digest test runs before any ON CONFLICT clause is
-- considered, so an upsert on the digest is refused rather than updated or skipped.
CREATE OR REPLACE FUNCTION rule_history_in_order() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_TABLE_NAME = 'rule_versions' THEN
        IF EXISTS (SELECT 1 FROM rule_versions WHERE digest = NEW.digest) THEN
            RAISE EXCEPTION 'rule versions are immutable: digest % is stored already',
                NEW.digest USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.version IS DISTINCT FROM
                (SELECT COALESCE(max(version), 0) + 1 FROM rule_versions) THEN
            RAISE EXCEPTION 'rule versions are numbered 1, 2, 3 without gaps: % is not next',
                NEW.version USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    ELSIF NEW.seq IS DISTINCT FROM (SELECT COALESCE(max(seq), 0) + 1 FROM rule_activations)
            OR NEW.previous IS DISTINCT FROM
                (SELECT version FROM rule_activations ORDER BY seq DESC LIMIT 1) THEN
        RAISE EXCEPTION 'rule activations are appended in order: seq % is not next or '
            'previous % is not the active version', NEW.seq, NEW.previous
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;
-- The triggers are created only when missing: no catalogue write (nor table lock) when
-- replicas start on a database that has them. Schema creation runs under an advisory lock.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_versions'::regclass
                   AND tgname = 'rule_versions_in_order') THEN
        CREATE TRIGGER rule_versions_in_order BEFORE INSERT ON rule_versions
            FOR EACH ROW EXECUTE FUNCTION rule_history_in_order();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_versions'::regclass
                   AND tgname = 'rule_versions_immutable') THEN
        CREATE TRIGGER rule_versions_immutable BEFORE UPDATE OR DELETE ON rule_versions
            FOR EACH ROW EXECUTE FUNCTION rule_history_refuse('rule versions are immutable');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_versions'::regclass
                   AND tgname = 'rule_versions_no_truncate') THEN
        CREATE TRIGGER rule_versions_no_truncate BEFORE TRUNCATE ON rule_versions
            FOR EACH STATEMENT EXECUTE FUNCTION rule_history_refuse('rule versions are immutable');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_activations'::regclass
                   AND tgname = 'rule_activations_in_order') THEN
        CREATE TRIGGER rule_activations_in_order BEFORE INSERT ON rule_activations
            FOR EACH ROW EXECUTE FUNCTION rule_history_in_order();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_activations'::regclass
                   AND tgname = 'rule_activations_append_only') THEN
        CREATE TRIGGER rule_activations_append_only BEFORE UPDATE OR DELETE ON rule_activations
            FOR EACH ROW EXECUTE FUNCTION rule_history_refuse('rule activations are append-only');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'rule_activations'::regclass
                   AND tgname = 'rule_activations_no_truncate') THEN
        CREATE TRIGGER rule_activations_no_truncate BEFORE TRUNCATE ON rule_activations
            FOR EACH STATEMENT EXECUTE FUNCTION rule_history_refuse('rule activations are append-only');
    END IF;
END
$$;
-- Calendars (docs/calendars.md): the closed days of a node ('node': non-shipping days) or a
-- carrier service ('service': non-delivery days), written as in calendars.csv and
-- ';'-joined. Only calendars that close some day are stored.
CREATE TABLE IF NOT EXISTS calendars (
    kind text NOT NULL CHECK (kind IN ('node', 'service')),
    owner text NOT NULL CHECK (owner <> ''),
    closed_days text NOT NULL CHECK (closed_days <> ''),
    PRIMARY KEY (kind, owner)
);
-- Counts calendar changes; routing reads it on every request and reloads the calendars
-- when it has moved.
CREATE TABLE IF NOT EXISTS calendar_revision (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL CHECK (revision >= 0)
);
INSERT INTO calendar_revision (id, revision) SELECT 1, 0
    WHERE NOT EXISTS (SELECT 1 FROM calendar_revision) ON CONFLICT (id) DO NOTHING;
-- API tokens (docs/security.md): only the SHA-256 digest of each token's secret is kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id text PRIMARY KEY,
    name text NOT NULL,
    roles text NOT NULL,
    digest text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- The principal that made each reservation: only it (or an admin) confirms or releases it.
CREATE TABLE IF NOT EXISTS reservation_owners (
    reservation_id text PRIMARY KEY REFERENCES reservations (reservation_id),
    owner text NOT NULL
);
-- The decision log (docs/decisions.md): the columns lookups filter on, and the service's
-- compressed router.v1.Decision message (body). node_ids is a JSON array of the nodes the
-- plan ships from; decision_nodes indexes them. Calendars are kept once per content.
CREATE TABLE IF NOT EXISTS decision_calendars (
    digest text PRIMARY KEY,
    body bytea NOT NULL,
    stored_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('ROUTE', 'PLAN', 'REROUTE')),
    order_id text NOT NULL,
    request_id text NOT NULL,
    reservation_id text NOT NULL,
    parent_id text NOT NULL,
    owner text NOT NULL,
    status text NOT NULL,
    decided_at timestamptz NOT NULL,
    node_ids text NOT NULL,
    calendars_digest text,
    body bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS decision_nodes (
    node_id text NOT NULL,
    decision_id text NOT NULL REFERENCES decisions (decision_id),
    PRIMARY KEY (node_id, decision_id)
);
-- As above: indexes are created only when missing, so that a starting replica takes no
-- SHARE lock on a table live transactions write.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'decisions'::regclass AND relname = 'decisions_by_time') THEN
        CREATE INDEX decisions_by_time ON decisions (decided_at, decision_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'decisions'::regclass AND relname = 'decisions_by_order') THEN
        CREATE INDEX decisions_by_order ON decisions (order_id, decided_at);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'decisions'::regclass AND relname = 'decisions_by_reservation') THEN
        CREATE INDEX decisions_by_reservation ON decisions (reservation_id, decided_at)
            WHERE reservation_id <> '';
    END IF;
    -- pruning deletes by decision, then the calendars no decision refers to
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'decision_nodes'::regclass AND relname = 'decision_nodes_by_decision') THEN
        CREATE INDEX decision_nodes_by_decision ON decision_nodes (decision_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
                   WHERE indrelid = 'decisions'::regclass AND relname = 'decisions_by_calendars') THEN
        CREATE INDEX decisions_by_calendars ON decisions (calendars_digest)
            WHERE calendars_digest IS NOT NULL;
    END IF;
END
$$;
