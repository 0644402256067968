-- The public number of the pin's order (the API's integer `orderId`), learnt from
-- `OrderCreated` (or `OrderNumbered` for orders from before numbers), so that a buyer's
-- list of holds names the order a hold belongs to as the buyer knows it.
ALTER TABLE pins ADD COLUMN order_no BIGINT;
