-- Each show's signing keys: the private key is read by this module alone. One key per
-- show is the one that signs (`active`); the others are kept so their tokens stay known.
CREATE TABLE keys (
    kid         TEXT    PRIMARY KEY,
    event_id    INTEGER NOT NULL,
    secret_key  TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX keys_active ON keys (event_id) WHERE active = 1;
CREATE INDEX keys_event ON keys (event_id);

-- The seats' labels, from the catalog's announcement of the show.
CREATE TABLE seats (
    event_id INTEGER NOT NULL,
    seat_id  INTEGER NOT NULL,
    label    TEXT    NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

-- The orders as the order events tell them: who owns them, and which seats.
CREATE TABLE orders (
    order_id   TEXT    PRIMARY KEY,
    order_no   INTEGER,
    event_id   INTEGER NOT NULL,
    buyer      TEXT    NOT NULL,
    seat_ids   TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX orders_no ON orders (order_no);

CREATE TABLE tickets (
    ticket_id  TEXT    PRIMARY KEY,
    order_id   TEXT    NOT NULL,
    event_id   INTEGER NOT NULL,
    seat_id    INTEGER NOT NULL,
    kid        TEXT    NOT NULL,
    token      TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    used_at    INTEGER,
    used_gate  TEXT,
    revoked_at INTEGER,
    UNIQUE (order_id, seat_id)
);
CREATE INDEX tickets_event ON tickets (event_id, status);

-- Every scan once, by its id, with the answer it got: the same id again gets the same.
CREATE TABLE scans (
    scan_id    TEXT    PRIMARY KEY,
    ticket_id  TEXT,
    event_id   INTEGER,
    gate       TEXT    NOT NULL,
    scanned_at INTEGER NOT NULL,
    offline    INTEGER NOT NULL,
    result     TEXT    NOT NULL,
    answer     TEXT    NOT NULL
);
CREATE INDEX scans_event_result ON scans (event_id, result);
CREATE INDEX scans_ticket ON scans (ticket_id);
