-- Only seats that can expire. The index had every HELD seat, so PostgreSQL could combine
-- it with seats_by_order for "this order's HELD seats" (a bitmap AND) and did, with
-- statistics taken before an on-sale, when few seats were held: every such statement then
-- read the entries of every held seat (and of the held seats since sold or freed, which a
-- bitmap scan never marks dead), not the order's few. The sweep still reads it: its
-- "expires_at < $1" implies "expires_at IS NOT NULL".
DROP INDEX seats_expiring;
CREATE INDEX seats_expiring ON seats (expires_at) WHERE status = 'HELD' AND expires_at IS NOT NULL;
