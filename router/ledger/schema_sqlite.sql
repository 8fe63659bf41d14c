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
-- Planning reads the positions of an order's SKUs.
CREATE INDEX IF NOT EXISTS positions_by_sku ON positions (sku);
CREATE TABLE IF NOT EXISTS capacity (
    node_id TEXT NOT NULL REFERENCES nodes (node_id),
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    daily_limit INTEGER,
    PRIMARY KEY (node_id, day),
    CONSTRAINT capacity_within_limit CHECK (used >= 0 AND (daily_limit IS NULL OR used <= daily_limit))
);
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
CREATE TABLE IF NOT EXISTS reservation_lines (
    reservation_id TEXT NOT NULL REFERENCES reservations (reservation_id),
    line_no INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, line_no)
);
CREATE TABLE IF NOT EXISTS reservation_capacity (
    reservation_id TEXT NOT NULL REFERENCES reservations (reservation_id),
    node_id TEXT NOT NULL,
    day TEXT NOT NULL,
    PRIMARY KEY (reservation_id, node_id, day)
);
CREATE TABLE IF NOT EXISTS idempotency (
    request_id TEXT PRIMARY KEY,
    operation TEXT NOT NULL CHECK (operation IN ('reserve', 'confirm', 'release')),
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
