-- pgbench: scheme B (transaction-id horizon) without pg_notify (NOTIFY takes a
-- database-wide lock at commit that is held across the commit's WAL flush).
-- :data and :metadata (-D) are the ~300-byte payload and its metadata, bound as parameters.
BEGIN;
-- Open a new stream (optimistic check: the stream must not exist yet). Each append goes to a
-- new random stream, so the check always passes; \gset keeps the name for the insert below.
INSERT INTO streams (name, version) VALUES ('case-' || gen_random_uuid()::text, 2)
    ON CONFLICT DO NOTHING RETURNING name \gset
-- Scheme B: position = (transaction id << 12) + i, i = 0, 1 (at most 4096 events per
-- append); no shared row, so concurrent appends do not wait for each other.
INSERT INTO events (position, stream, version, event_id, event_type, data, metadata)
SELECT (pg_current_xact_id()::text::bigint << 12) + e.i, :name, e.i + 1, gen_random_uuid(), e.t,
       :data, :metadata
FROM (VALUES (0, 'CaseReported'), (1, 'CaseTriaged')) AS e (i, t);
END;
