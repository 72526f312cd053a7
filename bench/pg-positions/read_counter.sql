-- pgbench: one page of a reader catching up, scheme A: every committed position is readable.
-- :lo and :hi (-D) bound the start so that a page is always full (512 events).
\set from random(:lo, :hi)
SELECT position, stream, version, event_id, event_type, data, metadata, recorded_at
FROM events
WHERE position > :from
ORDER BY position
LIMIT 512;
