-- One payment per order.  REQUESTED → SUCCEEDED | FAILED ; SUCCEEDED → REFUNDED
CREATE TABLE payments (
    payment_id       TEXT    PRIMARY KEY,
    order_id         TEXT    NOT NULL UNIQUE,
    buyer            TEXT    NOT NULL,
    amount           INTEGER NOT NULL,
    status           TEXT    NOT NULL,
    -- The order was cancelled while the gateway was still deciding: refund on success.
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- A worker has claimed the gateway call until then.
    lease_until      INTEGER,
    traceparent      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- Work for the gateway workers: charges to make, refunds to give.
CREATE INDEX payments_pending ON payments (created_at) WHERE status = 'REQUESTED' OR cancel_requested = 1;
