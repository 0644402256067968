-- The committed offsets of consumer groups reading a topic straight from its producer's
-- outbox (offsets there are outbox `seq` numbers, not ids of `messages`).
CREATE TABLE outbox_offsets (
    topic     TEXT    NOT NULL,
    grp       TEXT    NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (topic, grp)
);
