-- How many seats the pin holds, so that selling a paid order's pin can check in the same
-- statement that none was lost (NULL for pins made before: they are sold the long way).
ALTER TABLE pins ADD COLUMN seat_count BIGINT;
