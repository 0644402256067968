-- The shows' titles and dates, from the catalog's announcement, for the printed tickets.
CREATE TABLE shows (
    event_id  INTEGER PRIMARY KEY,
    title     TEXT    NOT NULL,
    date_time TEXT    NOT NULL
);
