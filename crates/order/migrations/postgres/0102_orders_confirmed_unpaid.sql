-- Orders CONFIRMED but not paid: a violation the consistency check counts every few
-- seconds. The index holds only such orders (normally none, or one for a moment), so the
-- check reads it instead of every confirmed order there ever was.
CREATE INDEX orders_confirmed_unpaid ON orders (status, paid) WHERE status = 'CONFIRMED' AND paid = 0;
