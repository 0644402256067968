-- Seat spinning (issue 20): one host holding every seat of a show through anonymous
-- buyers it makes up at will, and keeping them by holding them again as they lapse.
--   holder_addr: the client address of an anonymous holder (NULL for a buyer named by a
--                bearer token, who is counted per buyer); the seats held from one address
--                at once are capped.
--   held_since:  when the holder began holding the seat; neither an extend nor holding it
--                again keeps it past held_since + the longest life of a hold.
--   last_*:      who last gave the seat up, and how: EXPIRED (let it lapse: that buyer and
--                address may not hold it again until last_until) or RELEASED (they may,
--                but the hold's life goes on from last_held_since until last_until, so a
--                release and a new hold do not start the clock again).
ALTER TABLE seats ADD COLUMN holder_addr TEXT;
ALTER TABLE seats ADD COLUMN held_since BIGINT;
ALTER TABLE seats ADD COLUMN last_holder TEXT;
ALTER TABLE seats ADD COLUMN last_addr TEXT;
ALTER TABLE seats ADD COLUMN last_held_since BIGINT;
ALTER TABLE seats ADD COLUMN last_until BIGINT;
ALTER TABLE seats ADD COLUMN last_how TEXT;
-- The cap counts one address's live holds on every anonymous hold: from here, only that
-- address's held seats (a seat leaves the index when it stops being HELD).
CREATE INDEX seats_held_by_addr ON seats (holder_addr, expires_at) WHERE status = 'HELD' AND holder_addr IS NOT NULL;
