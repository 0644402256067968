-- The relay's unit of work: one slot (a hash of the key) is published by one relay at a
-- time, so replicas publish in parallel while each key's events keep their order.
ALTER TABLE outbox ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_unpublished_by_slot ON outbox (slot, seq) WHERE published_at IS NULL;
