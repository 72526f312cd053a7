-- pgbench: one page of a reader catching up, scheme B: only positions below the oldest
-- transaction still running (xmin of the current snapshot) are read, so a reader never skips
-- a position that a slower transaction commits later.
\set from random(:lo, :hi)
SELECT position, stream, version, event_id, event_type, data, metadata, recorded_at
FROM events
WHERE position > :from
  AND position < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 12)
ORDER BY position
LIMIT 512;
