-- The ledger schema for SQLite (docs/ledger.md). Instants are UTC ISO-8601 text with
-- microseconds (they sort as they compare); days are ISO dates.
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    daily_order_capacity INTEGER CHECK (daily_order_capacity IS NULL OR daily_order_capacity >= 0)
);
CREATE TABLE IF NOT EXISTS positions (
    node_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    safety_stock INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, sku),
    CONSTRAINT positions_balance CHECK (on_hand >= 0 AND reserved >= 0 AND reserved <= on_hand),
    CONSTRAINT positions_safety CHECK (safety_stock >= 0)
);
-- Planning reads the positions of an order's SKUs: from this index alone (it covers every
-- column read), in one range scan per SKU. It replaces the plain index on sku.
CREATE INDEX IF NOT EXISTS positions_by_sku_covering
    ON positions (sku, node_id, on_hand, safety_stock, reserved);
DROP INDEX IF EXISTS positions_by_sku;
CREATE TABLE IF NOT EXISTS capacity (
    node_id TEXT NOT NULL REFERENCES nodes (node_id),
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    daily_limit INTEGER,
    PRIMARY KEY (node_id, day),
    CONSTRAINT capacity_within_limit CHECK (used >= 0 AND (daily_limit IS NULL OR used <= daily_limit))
);
-- Planning reads the slots of the days an order may ship on (Ledger.capacity_used).
CREATE INDEX IF NOT EXISTS capacity_by_day ON capacity (day);
CREATE TABLE IF NOT EXISTS reservations (
    reservation_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'RELEASED', 'EXPIRED')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_held_by_expiry
    ON reservations (expires_at) WHERE status = 'HELD';
-- Lookups (ListReservations): by order, by node, in expiry order page by page.
CREATE INDEX IF NOT EXISTS reservations_by_order ON reservations (order_id);
CREATE INDEX IF NOT EXISTS reservations_by_expiry ON reservations (expires_at, reservation_id);
CREATE TABLE IF NOT EXISTS reservation_lines (
    reservation_id TEXT NOT NULL REFERENCES reservations (reservation_id),
    line_no INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, line_no)
);
CREATE INDEX IF NOT EXISTS reservation_lines_by_node ON reservation_lines (node_id, reservation_id);
CREATE TABLE IF NOT EXISTS reservation_capacity (
    reservation_id TEXT NOT NULL REFERENCES reservations (reservation_id),
    node_id TEXT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (reservation_id, node_id, day)
);
-- Every RejectShipment that committed, numbered per reservation (seq 1, 2, ...): how many
-- rejections an order has had, and the nodes excluded from its re-routes (docs/decisions.md).
CREATE TABLE IF NOT EXISTS reservation_rejections (
    reservation_id TEXT NOT NULL REFERENCES reservations (reservation_id),
    seq INTEGER NOT NULL CHECK (seq >= 1),
    node_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (reservation_id, seq)
);
CREATE TABLE IF NOT EXISTS idempotency (
    request_id TEXT PRIMARY KEY,
    operation TEXT NOT NULL CHECK (operation IN ('reserve', 'confirm', 'release', 'reject')),
    digest TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    response BLOB -- the serialized RPC response of a reserve call (RouteOrder), if any
);
CREATE TABLE IF NOT EXISTS feed_positions (
    feed TEXT NOT NULL,
    node_id TEXT NOT NULL,
    sequence INTEGER NOT NULL CHECK (sequence >= 0),
    PRIMARY KEY (feed, node_id)
);
CREATE TABLE IF NOT EXISTS feed_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
);
INSERT INTO feed_counters (name, value) VALUES
    ('applied', 0), ('stale', 0), ('duplicate', 0), ('clamped_units', 0)
    ON CONFLICT (name) DO NOTHING;
-- Rule-set versions (docs/ledger.md): numbered 1, 2, 3 … without gaps, unique by digest,
-- never changed or deleted once stored.
CREATE TABLE IF NOT EXISTS rule_versions (
    version INTEGER PRIMARY KEY CHECK (version >= 1),
    name TEXT NOT NULL CHECK (name <> ''),
    document TEXT NOT NULL CHECK (document <> ''),
    digest TEXT NOT NULL UNIQUE,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL CHECK (published_by <> ''),
    reason TEXT NOT NULL,
    lint TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER IF NOT EXISTS rule_versions_gapless BEFORE INSERT ON rule_versions
    WHEN NEW.version IS NOT (SELECT COALESCE(MAX(version), 0) + 1 FROM rule_versions)
BEGIN SELECT RAISE(ABORT, 'rule versions are numbered 1, 2, 3 without gaps'); END;
-- INSERT OR REPLACE / REPLACE INTO resolve a clash on a key (version) or on the unique
-- digest by deleting the stored row, and DELETE triggers do not fire for that deletion
-- (unless recursive_triggers is on): refuse every insert whose version or digest is stored.
CREATE TRIGGER IF NOT EXISTS rule_versions_no_replace BEFORE INSERT ON rule_versions
    WHEN EXISTS (SELECT 1 FROM rule_versions WHERE version = NEW.version)
      OR EXISTS (SELECT 1 FROM rule_versions WHERE digest = NEW.digest)
BEGIN SELECT RAISE(ABORT, 'rule versions are immutable: that version or digest is stored already'); END;
CREATE TRIGGER IF NOT EXISTS rule_versions_no_update BEFORE UPDATE ON rule_versions
BEGIN SELECT RAISE(ABORT, 'rule versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS rule_versions_no_delete BEFORE DELETE ON rule_versions
BEGIN SELECT RAISE(ABORT, 'rule versions are immutable'); END;
-- Which version is active: the activation with the highest seq. Append-only; each row's
-- previous is the version of the row before it.
CREATE TABLE IF NOT EXISTS rule_activations (
    seq INTEGER PRIMARY KEY CHECK (seq >= 1),
    version INTEGER NOT NULL REFERENCES rule_versions (version),
    action TEXT NOT NULL CHECK (action IN ('activate', 'rollback')),
    activated_at TEXT NOT NULL,
    activated_by TEXT NOT NULL CHECK (activated_by <> ''),
    reason TEXT NOT NULL CHECK (reason <> ''),
    previous INTEGER REFERENCES rule_versions (version),
    CONSTRAINT rule_activations_changes CHECK (previous IS NULL OR previous <> version),
    CONSTRAINT rule_activations_rollback CHECK (action = 'activate' OR previous IS NOT NULL)
);
CREATE TRIGGER IF NOT EXISTS rule_activations_in_order BEFORE INSERT ON rule_activations
    WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM rule_activations)
      OR NEW.previous IS NOT (SELECT version FROM rule_activations ORDER BY seq DESC LIMIT 1)
BEGIN SELECT RAISE(ABORT, 'rule activations are appended in order: seq is the next number, previous the active version'); END;
-- The same for the activation log: no insert may replace a stored row.
CREATE TRIGGER IF NOT EXISTS rule_activations_no_replace BEFORE INSERT ON rule_activations
    WHEN EXISTS (SELECT 1 FROM rule_activations WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'rule activations are append-only: that seq is stored already'); END;
CREATE TRIGGER IF NOT EXISTS rule_activations_no_update BEFORE UPDATE ON rule_activations
BEGIN SELECT RAISE(ABORT, 'rule activations are append-only'); END;
CREATE TRIGGER IF NOT EXISTS rule_activations_no_delete BEFORE DELETE ON rule_activations
BEGIN SELECT RAISE(ABORT, 'rule activations are append-only'); END;
-- Calendars (docs/calendars.md): the closed days of a node ('node': non-shipping days) or a
-- carrier service ('service': non-delivery days), written as in calendars.csv and
-- ';'-joined. Only calendars that close some day are stored.
CREATE TABLE IF NOT EXISTS calendars (
    kind TEXT NOT NULL CHECK (kind IN ('node', 'service')),
    owner TEXT NOT NULL CHECK (owner <> ''),
    closed_days TEXT NOT NULL CHECK (closed_days <> ''),
    PRIMARY KEY (kind, owner)
);
-- Counts calendar changes; routing reads it on every request and reloads the calendars
-- when it has moved.
CREATE TABLE IF NOT EXISTS calendar_revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL CHECK (revision >= 0)
);
INSERT INTO calendar_revision (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
-- API tokens (docs/security.md): only the SHA-256 digest of each token's secret is kept.
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    roles TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
-- The principal that made each reservation: only it (or an admin) confirms or releases it.
CREATE TABLE IF NOT EXISTS reservation_owners (
    reservation_id TEXT PRIMARY KEY REFERENCES reservations (reservation_id),
    owner TEXT NOT NULL
);
-- The decision log (docs/decisions.md): the columns lookups filter on, and the service's
-- compressed router.v1.Decision message (body). node_ids is a JSON array of the nodes the
-- plan ships from; decision_nodes indexes them. Calendars are kept once per content.
CREATE TABLE IF NOT EXISTS decision_calendars (
    digest TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('ROUTE', 'PLAN', 'REROUTE')),
    order_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    node_ids TEXT NOT NULL,
    calendars_digest TEXT,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_at, decision_id);
CREATE INDEX IF NOT EXISTS decisions_by_order ON decisions (order_id, decided_at);
CREATE INDEX IF NOT EXISTS decisions_by_reservation ON decisions (reservation_id, decided_at)
    WHERE reservation_id <> '';
CREATE TABLE IF NOT EXISTS decision_nodes (
    node_id TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    PRIMARY KEY (node_id, decision_id)
);
-- Pruning deletes by decision (and checks the foreign key from each decision it deletes),
-- then the calendars no decision refers to: both by index, not by scanning the log.
CREATE INDEX IF NOT EXISTS decision_nodes_by_decision ON decision_nodes (decision_id);
CREATE INDEX IF NOT EXISTS decisions_by_calendars ON decisions (calendars_digest)
    WHERE calendars_digest IS NOT NULL;
