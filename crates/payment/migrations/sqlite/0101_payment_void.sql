-- The payment FAILED without a clear answer from the gateway (past its deadline, or a
-- success that came too late): the charge, if any was made, is still to be voided there.
ALTER TABLE payments ADD COLUMN void_requested INTEGER NOT NULL DEFAULT 0;
DROP INDEX payments_pending;
CREATE INDEX payments_pending ON payments (created_at)
    WHERE status = 'REQUESTED' OR cancel_requested = 1 OR void_requested = 1;
