-- Venues (docs/VENUES.md): a show made from a venue layout keeps its categories (JSON),
-- its seats' places, and its standing areas, whose places are seats of the map too.
ALTER TABLE events ADD COLUMN categories TEXT;
-- Seats and standing places of the show; rows × cols for a grid show.
ALTER TABLE events ADD COLUMN places BIGINT;
UPDATE events SET places = rows_count * cols_count;

ALTER TABLE seats ADD COLUMN area_id BIGINT;
ALTER TABLE seats ADD COLUMN section TEXT;
ALTER TABLE seats ADD COLUMN category TEXT;
-- The rest of a venue seat's place, as the seat map shows it (JSON).
ALTER TABLE seats ADD COLUMN place TEXT;
CREATE INDEX seats_by_area ON seats (event_id, area_id, status) WHERE area_id IS NOT NULL;

CREATE TABLE areas (
    event_id BIGINT NOT NULL REFERENCES events (id),
    area_id  BIGINT NOT NULL,
    name     TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    category TEXT NOT NULL,
    price    BIGINT NOT NULL,
    PRIMARY KEY (event_id, area_id)
);
