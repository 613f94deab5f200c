-- Audit trail storage, one row per batch (SQLite). A row per event, with
-- its indexes, cost about as much CPU to write as the authenticated read it
-- records; the writer appends a batch of up to 256 events at a time, so it
-- now stores each batch as one row: the events as a JSON array, and the
-- columns a filter needs to skip whole batches. The chain is unchanged:
-- each event carries the hash of its canonical content and of the event
-- before it (models/audit.go), and audit_head holds the newest hash.
--
-- events: a JSON array of events, each one an array of 17 strings
--   ["v1", id, at, actor_type, actor_id, user_id, client_ip, user_agent,
--    request_id, route, action, resource_type, resource_id, outcome,
--    reason, prev_hash, hash]
-- (the hashed canonical form followed by the hash); its events are seqs
-- first_seq..last_seq in order. outcomes is a bit set (1 allow, 2 deny,
-- 4 error); actions and actors (actor and acting-user IDs) are the batch's
-- distinct values, each one between commas. "audit verify" checks these
-- columns against the events, so editing one to hide events is caught.
CREATE TABLE audit_batches (
    first_seq INTEGER  PRIMARY KEY,
    last_seq  INTEGER  NOT NULL,
    first_id  TEXT     NOT NULL UNIQUE, -- a batch retried after a lost commit is stored once
    max_at    DATETIME NOT NULL,
    outcomes  INTEGER  NOT NULL,
    actions   TEXT     NOT NULL,
    actors    TEXT     NOT NULL,
    events    TEXT     NOT NULL,
    CHECK (last_seq >= first_seq)
);

-- The events written so far move into batches of 256, renumbered 1..n in
-- their order (their hashes do not cover seq). Their at is stored as the
-- driver writes a bound time ("2006-01-02 15:04:05.999999999-07:00", in
-- UTC: "+00:00", the fraction without trailing zeros, none at all for a
-- whole second); in a batch it takes the canonical form
-- ("2006-01-02T15:04:05.000000Z"), the fraction padded to microseconds
-- (strftime's %f would keep only milliseconds). max_at keeps the stored
-- form, which is what a bound time compares with (List's max_at >= ?).
WITH numbered AS (
    SELECT row_number() OVER (ORDER BY seq) AS n,
        CASE WHEN at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]*+00:00'
            THEN substr(at, 1, 10) || 'T' || substr(at, 12, 8) || '.' ||
                substr(CASE WHEN substr(at, 20, 1) = '.' THEN substr(at, 21, length(at) - 26) ELSE '' END || '000000', 1, 6) || 'Z'
            ELSE at END AS canonical_at,
        *
    FROM audit_events
)
INSERT INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events)
SELECT min(n), max(n), json_group_array(id ORDER BY n) ->> 0, max(at),
    max(outcome = 'allow') + 2 * max(outcome = 'deny') + 4 * max(outcome = 'error'),
    ',' || group_concat(DISTINCT action) || ',',
    ',' || group_concat(DISTINCT actor_id) || ',' || group_concat(DISTINCT user_id) || ',',
    json_group_array(json_array('v1', id, canonical_at, actor_type, actor_id, user_id, client_ip, user_agent, request_id,
        route, action, resource_type, resource_id, outcome, reason, prev_hash, hash) ORDER BY n)
FROM numbered
GROUP BY (n - 1) / 256;
UPDATE audit_head SET last_seq = (SELECT count(*) FROM audit_events) WHERE id = 1;
DROP TABLE audit_events;

-- Append-only, as audit_events was.
CREATE TRIGGER audit_batches_no_update BEFORE UPDATE ON audit_batches
BEGIN
    SELECT RAISE(ABORT, 'audit_batches is append-only');
END;
CREATE TRIGGER audit_batches_no_delete BEFORE DELETE ON audit_batches
BEGIN
    SELECT RAISE(ABORT, 'audit_batches is append-only');
END;
-- INSERT OR REPLACE deletes the row it replaces without firing delete
-- triggers: refuse any insert that would replace a row.
CREATE TRIGGER audit_batches_no_replace BEFORE INSERT ON audit_batches
WHEN EXISTS (SELECT 1 FROM audit_batches WHERE first_seq = NEW.first_seq OR first_id = NEW.first_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_batches is append-only');
END;

-- One row per event, for reading with SQL (the columns audit_events had).
CREATE VIEW audit_events AS
SELECT b.first_seq + e.key AS seq, e.value ->> 1 AS id, e.value ->> 2 AS at, e.value ->> 3 AS actor_type,
    e.value ->> 4 AS actor_id, e.value ->> 5 AS user_id, e.value ->> 6 AS client_ip, e.value ->> 7 AS user_agent,
    e.value ->> 8 AS request_id, e.value ->> 9 AS route, e.value ->> 10 AS action,
    e.value ->> 11 AS resource_type, e.value ->> 12 AS resource_id, e.value ->> 13 AS outcome,
    e.value ->> 14 AS reason, e.value ->> 15 AS prev_hash, e.value ->> 16 AS hash
FROM audit_batches AS b, json_each(b.events) AS e;
