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
-- Planning reads the positions of an order's SKUs.
CREATE INDEX IF NOT EXISTS positions_by_sku ON positions (sku);
CREATE TABLE IF NOT EXISTS capacity (
    node_id text NOT NULL REFERENCES nodes (node_id),
    day date NOT NULL,
    used integer NOT NULL,
    daily_limit integer,
    PRIMARY KEY (node_id, day),
    CONSTRAINT capacity_within_limit CHECK (used >= 0 AND (daily_limit IS NULL OR used <= daily_limit))
);
CREATE TABLE IF NOT EXISTS reservations (
    reservation_id text PRIMARY KEY,
    order_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'RELEASED', 'EXPIRED')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_held_by_expiry
    ON reservations (expires_at) WHERE status = 'HELD';
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
CREATE TABLE IF NOT EXISTS idempotency (
    request_id text PRIMARY KEY,
    operation text NOT NULL CHECK (operation IN ('reserve', 'confirm', 'release')),
    digest text NOT NULL,
    reservation_id text NOT NULL,
    created_at timestamptz NOT NULL,
    response bytea -- the serialized RPC response of a reserve call (RouteOrder), if any
);
-- Ledgers created before the response column existed get it added.
ALTER TABLE idempotency ADD COLUMN IF NOT EXISTS response bytea;
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
INSERT INTO feed_counters (name, value) VALUES
    ('applied', 0), ('stale', 0), ('duplicate', 0), ('clamped_units', 0)
    ON CONFLICT (name) DO NOTHING;
