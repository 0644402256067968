-- The public number of the payment's order (the API's integer `orderId`), which
-- `POST /payments/authorize` is asked by. From `OrderCreated`, or for orders created
-- before numbers existed, from the `OrderNumbered` announced after the upgrade.
ALTER TABLE payments ADD COLUMN order_no INTEGER;
CREATE UNIQUE INDEX payments_by_order_no ON payments (order_no);
