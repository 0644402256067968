-- Each show's waiting room: its settings, the seed its pre-queue was shuffled with (drawn
-- at the on-sale and kept, so the order can be checked), and the serving counter.
CREATE TABLE rooms (
    event_id        INTEGER PRIMARY KEY,
    enabled         INTEGER NOT NULL,
    -- Admissions per minute; NULL for `auto`.
    rate_per_minute INTEGER,
    on_sale_at      INTEGER,
    -- The pre-queue's shuffle: its seed, the last entry it took, and when it was drawn.
    seed            TEXT,
    prequeue_last   INTEGER,
    drawn_at        INTEGER,
    -- Queue positions passed by the serving counter, its fraction of a visitor, and when.
    served          INTEGER NOT NULL DEFAULT 0,
    carry           DOUBLE PRECISION NOT NULL DEFAULT 0,
    served_at       INTEGER NOT NULL DEFAULT 0,
    -- Bumped by every change, so replicas advance the counter one at a time.
    version         INTEGER NOT NULL DEFAULT 0
);

-- One place per buyer and show; the id is the arrival order.
CREATE TABLE entries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    INTEGER NOT NULL,
    buyer       TEXT    NOT NULL,
    joined_at   INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL,
    admitted_at INTEGER,
    no_show     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, buyer)
);
