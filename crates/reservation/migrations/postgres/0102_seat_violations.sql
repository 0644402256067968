-- Seats SOLD without an order, or HELD without a holder: violations the consistency
-- checks count every few seconds. Each index holds only such seats (normally none), so
-- the checks read it instead of every seat there is.
CREATE INDEX seats_sold_without_order ON seats (status, order_id) WHERE status = 'SOLD' AND order_id IS NULL;
CREATE INDEX seats_held_without_holder ON seats (status, holder) WHERE status = 'HELD' AND holder IS NULL;
