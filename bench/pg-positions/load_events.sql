-- 200,000 events for the reader measurement, laid out as scheme B lays them out: two events
-- per transaction at (xid << 12) + 0 and + 1, for the 100,000 transactions before this one, so
-- that every event is below the reader's horizon. (On a cluster younger than 100,000
-- transactions the first positions are negative, which changes nothing for the index.)
-- Both reader queries run on this table, so they return the same rows.
TRUNCATE events, streams;
INSERT INTO events (position, stream, version, event_id, event_type, data, metadata)
SELECT ((x.base + k) << 12) + i, 'case-' || k, i + 1, gen_random_uuid(),
       CASE i WHEN 0 THEN 'CaseReported' ELSE 'CaseTriaged' END,
       :'data', :'metadata'
FROM (SELECT pg_current_xact_id()::text::bigint - 100001 AS base) AS x,
     generate_series(1, 100000) AS k,
     generate_series(0, 1) AS i;
