-- Orders get the public number the contract shows (`orderId`, an integer as the original's
-- Long), in creation order. Orders written before numbers existed are numbered here in
-- the order they were created, and marked to have their numbers announced once
-- (`OrderNumbered`) to the modules that keep them. New orders take MAX + 1 on the one
-- writer, inside the transaction that inserts them.
ALTER TABLE orders ADD COLUMN order_no INTEGER;
ALTER TABLE orders ADD COLUMN number_unannounced INTEGER NOT NULL DEFAULT 0;
UPDATE orders SET order_no = numbered.n, number_unannounced = 1
    FROM (SELECT order_id, row_number() OVER (ORDER BY created_at, order_id) AS n FROM orders) AS numbered
    WHERE orders.order_id = numbered.order_id;
CREATE UNIQUE INDEX orders_by_no ON orders (order_no);
CREATE INDEX orders_number_unannounced ON orders (order_no) WHERE number_unannounced = 1;
