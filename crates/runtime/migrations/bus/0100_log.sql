CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT    NOT NULL,
    msg_key     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    appended_at INTEGER NOT NULL
);
CREATE INDEX messages_by_topic ON messages (topic, id);

CREATE TABLE consumer_offsets (
    topic     TEXT    NOT NULL,
    grp       TEXT    NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (topic, grp)
);
