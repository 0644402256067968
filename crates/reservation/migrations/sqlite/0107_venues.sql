-- Venues (docs/VENUES.md): a seat's place in its venue, which best available ranks, and
-- the standing area a place belongs to.
ALTER TABLE seats ADD COLUMN area_id INTEGER;
-- contract::venue::PlacedSeat as JSON: section, row and position, category, x, y, flags.
ALTER TABLE seats ADD COLUMN place TEXT;
CREATE INDEX seats_by_area ON seats (event_id, area_id, seat_id) WHERE area_id IS NOT NULL;

-- A venue's sections, by the index a seat's place names, and where "best" is measured from.
CREATE TABLE venue_sections (
    event_id INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    name     TEXT NOT NULL,
    focal_x  REAL NOT NULL,
    focal_y  REAL NOT NULL,
    PRIMARY KEY (event_id, idx)
);
