-- Orders get the public number the contract shows (`orderId`, an integer as the original's
-- Long), from a sequence that every replica draws from. Orders written before numbers
-- existed are numbered here in the order they were created, and marked to have their
-- numbers announced once (`OrderNumbered`) to the modules that keep them.
CREATE SEQUENCE orders_order_no_seq;
ALTER TABLE orders ADD COLUMN order_no BIGINT;
ALTER TABLE orders ADD COLUMN number_unannounced BIGINT NOT NULL DEFAULT 0;
UPDATE orders SET order_no = numbered.n, number_unannounced = 1
    FROM (SELECT order_id, row_number() OVER (ORDER BY created_at, order_id) AS n FROM orders) AS numbered
    WHERE orders.order_id = numbered.order_id;
SELECT setval('orders_order_no_seq', COALESCE((SELECT MAX(order_no) FROM orders), 0) + 1, false);
ALTER TABLE orders ALTER COLUMN order_no SET NOT NULL;
ALTER SEQUENCE orders_order_no_seq OWNED BY orders.order_no;
CREATE UNIQUE INDEX orders_by_no ON orders (order_no);
CREATE INDEX orders_number_unannounced ON orders (order_no) WHERE number_unannounced = 1;
