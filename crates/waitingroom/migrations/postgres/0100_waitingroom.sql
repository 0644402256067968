-- Each show's waiting room: its settings, the seed its pre-queue was shuffled with (drawn
-- at the on-sale and kept, so the order can be checked), and the serving counter.
CREATE TABLE rooms (
    event_id        BIGINT PRIMARY KEY,
    enabled         BIGINT NOT NULL,
    -- Admissions per minute; NULL for `auto`.
    rate_per_minute BIGINT,
    on_sale_at      BIGINT,
    -- The pre-queue's shuffle: its seed, the last entry it took, and when it was drawn.
    seed            TEXT,
    prequeue_last   BIGINT,
    drawn_at        BIGINT,
    -- Queue positions passed by the serving counter, its fraction of a visitor, and when.
    served          BIGINT NOT NULL DEFAULT 0,
    carry           DOUBLE PRECISION NOT NULL DEFAULT 0,
    served_at       BIGINT NOT NULL DEFAULT 0,
    -- Bumped by every change, so replicas advance the counter one at a time.
    version         BIGINT NOT NULL DEFAULT 0
);

-- One place per buyer and show; the id is the arrival order.
CREATE TABLE entries (
    id          BIGSERIAL PRIMARY KEY,
    event_id    BIGINT NOT NULL,
    buyer       TEXT    NOT NULL,
    joined_at   BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL,
    admitted_at BIGINT,
    no_show     BIGINT NOT NULL DEFAULT 0,
    UNIQUE (event_id, buyer)
);
