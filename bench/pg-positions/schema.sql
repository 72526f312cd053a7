-- Schema shared by both ways of assigning global positions (bench/pg-positions).
-- `head` is only used by scheme A (counter row); scheme B (transaction-id horizon) has no
-- shared row and derives positions from the appending transaction's id.

CREATE TABLE streams (
    name    text PRIMARY KEY,
    version bigint NOT NULL            -- number of events in the stream
);

CREATE TABLE events (
    position    bigint PRIMARY KEY,
    stream      text NOT NULL,
    version     bigint NOT NULL,
    event_id    uuid NOT NULL UNIQUE,
    event_type  text NOT NULL,
    data        text NOT NULL,
    metadata    text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Scheme A: the one row holding the last position given out.
CREATE TABLE head (position bigint NOT NULL);
INSERT INTO head VALUES (0);
