CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT    NOT NULL,
    date_time   TEXT    NOT NULL,
    description TEXT    NOT NULL,
    rows_count  BIGINT NOT NULL,
    cols_count  BIGINT NOT NULL,
    -- Bumped by every seat change; the SSE stream's event ids.
    version     BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

-- The seat map as buyers see it: a projection of the reservation module's events.
CREATE TABLE seats (
    event_id  BIGINT NOT NULL REFERENCES events (id),
    seat_id   BIGINT NOT NULL,
    r         BIGINT NOT NULL,
    c         BIGINT NOT NULL,
    price     BIGINT NOT NULL,
    status    TEXT    NOT NULL DEFAULT 'AVAILABLE',
    -- The reservation module's version of the seat, so late or repeated events are ignored.
    source_version BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, seat_id)
);

-- Every seat change by map version, replayed to SSE clients that reconnect.
CREATE TABLE seat_changes (
    event_id BIGINT NOT NULL,
    version  BIGINT NOT NULL,
    seat_id  BIGINT NOT NULL,
    status   TEXT    NOT NULL,
    PRIMARY KEY (event_id, version)
);
