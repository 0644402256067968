-- A buyer's seats by status and show. The per-buyer limits, checked on every hold, count
-- the buyer's live holds (and one show's seats) from here, instead of reading every seat
-- the buyer ever bought.
DROP INDEX seats_by_holder;
CREATE INDEX seats_by_holder ON seats (holder, status, event_id) WHERE holder IS NOT NULL;
