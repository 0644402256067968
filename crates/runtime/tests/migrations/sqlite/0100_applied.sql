-- Every application of an event; a duplicate here means an event was applied twice.
CREATE TABLE applied (event_id TEXT NOT NULL, topic TEXT NOT NULL);
