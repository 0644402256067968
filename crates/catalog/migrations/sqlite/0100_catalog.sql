CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    date_time   TEXT    NOT NULL,
    description TEXT    NOT NULL,
    rows_count  INTEGER NOT NULL,
    cols_count  INTEGER NOT NULL,
    -- Bumped by every seat change; the SSE stream's event ids.
    version     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

-- The seat map as buyers see it: a projection of the reservation module's events.
CREATE TABLE seats (
    event_id  INTEGER NOT NULL REFERENCES events (id),
    seat_id   INTEGER NOT NULL,
    r         INTEGER NOT NULL,
    c         INTEGER NOT NULL,
    price     INTEGER NOT NULL,
    status    TEXT    NOT NULL DEFAULT 'AVAILABLE',
    -- The reservation module's version of the seat, so late or repeated events are ignored.
    source_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, seat_id)
);

-- Every seat change by map version, replayed to SSE clients that reconnect.
CREATE TABLE seat_changes (
    event_id INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    seat_id  INTEGER NOT NULL,
    status   TEXT    NOT NULL,
    PRIMARY KEY (event_id, version)
);
