-- Events written in the same transaction as the state change that caused them.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    topic        TEXT    NOT NULL,
    msg_key      TEXT    NOT NULL,
    envelope     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Ids of the events this module has applied, recorded with their effect.
CREATE TABLE inbox (
    event_id   TEXT    PRIMARY KEY,
    topic      TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
);
