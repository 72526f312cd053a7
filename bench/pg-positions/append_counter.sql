-- pgbench: one durable append of two events, scheme A (counter row).
-- :data and :metadata (-D) are the ~300-byte payload and its metadata, bound as parameters.
BEGIN;
-- Open a new stream (optimistic check: the stream must not exist yet). Each append goes to a
-- new random stream, so the check always passes; \gset keeps the name for the insert below.
INSERT INTO streams (name, version) VALUES ('case-' || gen_random_uuid()::text, 2)
    ON CONFLICT DO NOTHING RETURNING name \gset
-- Wake the readers (delivered at commit). Sent before the position is taken so that in
-- scheme A the counter row is locked for as short a time as possible.
SELECT pg_notify('minqing_events', '');
-- Scheme A: take two dense positions from the counter row; its row lock is held until the
-- transaction ends, i.e. across the commit's WAL flush.
WITH h AS (UPDATE head SET position = position + 2 RETURNING position)
INSERT INTO events (position, stream, version, event_id, event_type, data, metadata)
SELECT h.position - 2 + e.i, :name, e.i, gen_random_uuid(), e.t,
       :data, :metadata
FROM h, (VALUES (1, 'CaseReported'), (2, 'CaseTriaged')) AS e (i, t);
END;
