-- Audit trail storage, one row per batch (PostgreSQL). A row per event,
-- with its indexes, cost about as much CPU to write as the authenticated read it
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
--
-- Append-only for every role, by trigger; in production the server's role
-- is granted only SELECT, INSERT on audit_batches, SELECT on audit_events
-- and SELECT, UPDATE on audit_head (README, "Audit trail").
CREATE TABLE audit_batches (
    first_seq bigint      PRIMARY KEY,
    last_seq  bigint      NOT NULL,
    first_id  uuid        NOT NULL UNIQUE, -- a batch retried after a lost commit is stored once
    max_at    timestamptz NOT NULL,
    outcomes  integer     NOT NULL,
    actions   text        NOT NULL,
    actors    text        NOT NULL,
    events    text        NOT NULL,
    CHECK (last_seq >= first_seq)
);
-- Compressed with lz4: the default (pglz) made appending a batch about a
-- third slower than no compression, and lz4 faster still, with a fifth of
-- the size (BenchmarkAuditAppend). A server built without lz4 stores the
-- text uncompressed instead.
DO $$
BEGIN
    ALTER TABLE audit_batches ALTER COLUMN events SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    ALTER TABLE audit_batches ALTER COLUMN events SET STORAGE EXTERNAL;
END
$$;

-- The events written so far move into batches of 256, renumbered 1..n in
-- their order (an identity column leaves gaps; hashes do not cover seq).
INSERT INTO audit_batches (first_seq, last_seq, first_id, max_at, outcomes, actions, actors, events)
SELECT min(n), max(n), (array_agg(id ORDER BY n))[1], max(at),
    bit_or(CASE outcome WHEN 'allow' THEN 1 WHEN 'deny' THEN 2 ELSE 4 END),
    ',' || string_agg(DISTINCT action, ',') || ',',
    ',' || string_agg(DISTINCT actor_id, ',') || ',' || string_agg(DISTINCT user_id, ',') || ',',
    json_agg(json_build_array('v1', id::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        actor_type, actor_id, user_id, client_ip, user_agent, request_id, route, action, resource_type,
        resource_id, outcome, reason, prev_hash, hash) ORDER BY n)::text
FROM (SELECT row_number() OVER (ORDER BY seq) AS n, * FROM audit_events) AS numbered
GROUP BY (n - 1) / 256;
UPDATE audit_head SET last_seq = (SELECT count(*) FROM audit_events) WHERE id = 1;
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();

CREATE FUNCTION audit_batches_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_batches is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_batches_no_change BEFORE UPDATE OR DELETE ON audit_batches
    FOR EACH ROW EXECUTE FUNCTION audit_batches_append_only();
CREATE TRIGGER audit_batches_no_truncate BEFORE TRUNCATE ON audit_batches
    FOR EACH STATEMENT EXECUTE FUNCTION audit_batches_append_only();

-- One row per event, for reading with SQL (the columns audit_events had).
CREATE VIEW audit_events AS
SELECT b.first_seq + e.ord - 1 AS seq, (e.v ->> 1)::uuid AS id, (e.v ->> 2)::timestamptz AS at,
    e.v ->> 3 AS actor_type, e.v ->> 4 AS actor_id, e.v ->> 5 AS user_id, e.v ->> 6 AS client_ip,
    e.v ->> 7 AS user_agent, e.v ->> 8 AS request_id, e.v ->> 9 AS route, e.v ->> 10 AS action,
    e.v ->> 11 AS resource_type, e.v ->> 12 AS resource_id, e.v ->> 13 AS outcome,
    e.v ->> 14 AS reason, e.v ->> 15 AS prev_hash, e.v ->> 16 AS hash
FROM audit_batches AS b, json_array_elements(b.events::json) WITH ORDINALITY AS e(v, ord);
