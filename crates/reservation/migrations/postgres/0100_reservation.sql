-- The authoritative state of every seat.
--   AVAILABLE: free.
--   HELD: held by `holder` until `expires_at`. With `order_id` set the hold is pinned to
--         that order: first for a lease (expires_at = end of the lease), then — once the
--         order is known to exist — for good (expires_at NULL) until paid or cancelled.
--   SOLD: sold to `order_id`.
CREATE TABLE seats (
    event_id   BIGINT NOT NULL,
    seat_id    BIGINT NOT NULL,
    price      BIGINT NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'AVAILABLE',
    holder     TEXT,
    expires_at BIGINT,
    order_id   TEXT,
    -- Bumped on every status change; lets projections ignore stale events.
    version    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, seat_id)
);
CREATE INDEX seats_expiring ON seats (expires_at) WHERE status = 'HELD';
CREATE INDEX seats_by_order ON seats (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX seats_by_holder ON seats (holder) WHERE holder IS NOT NULL;

-- Orders' pins: which seats an order asked for, and how far it got.
--   LEASED → CONFIRMED (order seen) → SOLD | FAILED (paid, seats lost) | RELEASED | LAPSED
CREATE TABLE pins (
    order_id   TEXT    PRIMARY KEY,
    event_id   BIGINT NOT NULL,
    buyer      TEXT    NOT NULL,
    seat_ids   TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);
