-- Idempotency keys expire: once a key's order is older than the configured time, the
-- key may make a new order, of the next generation (its id derives from the key and
-- the generation, so a retry after a crash still writes the very same order).
ALTER TABLE orders ADD COLUMN key_generation INTEGER NOT NULL DEFAULT 0;
DROP INDEX orders_by_key;
CREATE UNIQUE INDEX orders_by_key ON orders (buyer, idempotency_key, key_generation);
