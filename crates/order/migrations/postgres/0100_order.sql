CREATE TABLE orders (
    order_id        TEXT    PRIMARY KEY,
    buyer           TEXT    NOT NULL,
    event_id        BIGINT NOT NULL,
    seat_ids        TEXT    NOT NULL,
    amount          BIGINT NOT NULL,
    -- CREATED → CONFIRMED | CANCELLED
    status          TEXT    NOT NULL,
    cancel_reason   TEXT,
    paid            BIGINT NOT NULL DEFAULT 0,
    -- The request that created the order: a repeat with the same key returns it.
    idempotency_key TEXT    NOT NULL,
    request_hash    TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX orders_by_key ON orders (buyer, idempotency_key);
CREATE INDEX orders_by_status ON orders (status, created_at);
CREATE INDEX orders_by_event ON orders (event_id, created_at);
CREATE INDEX orders_by_buyer ON orders (buyer, created_at);
