-- The orders not settled yet, for the checks that count them. orders_by_status, which it
-- replaces, led with the status, so confirming or cancelling an order ("order_id = $1 AND
-- status = 'CREATED'") could search it instead of the primary key, and PostgreSQL did on a
-- new database, before its first statistics: each such statement then read every
-- unsettled order. This predicate is not implied by "status = 'CREATED'", so only the
-- statements that state it read this index.
DROP INDEX orders_by_status;
CREATE INDEX orders_unsettled ON orders (created_at) WHERE status <> 'CONFIRMED' AND status <> 'CANCELLED';
