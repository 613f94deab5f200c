-- A shorter stored form for the audit trail's events (PostgreSQL). Writing
-- a batch cost CPU by the byte (on SQLite about 5 ns a byte), and an event
-- was about 460 bytes: the largest part of what the trail costs a request.
-- Most of an event repeats the one before it (the same actor, address,
-- user agent, route, action and outcome), and its prev_hash is the hash of
-- the event before. Batches the writer appends from now on store each such
-- repeated string once, in the batch's strings, and no prev_hash but the
-- first event's:
--
-- strings:   a JSON array of the batch's distinct values of the fields
--            marked # below.
-- prev_hash: the hash before the batch's first event ('' for the first
--            event of the trail).
-- events:    a JSON array of events, each one an array of 15 values
--   [id, at, actor_type#, actor_id#, user_id#, client_ip#, user_agent#,
--    request_id, route#, action#, resource_type#, resource_id, outcome#,
--    reason#, hash]
--   where a field marked # is the index of its value in strings; an
--   event's prev_hash is the hash of the event before it in the batch.
--
-- The hash of an event is unchanged: it covers the canonical form with
-- every field, prev_hash included (models/audit.go), so "audit verify"
-- checks a batch of either form the same way. Batches written before this
-- migration keep 0005's form (strings and prev_hash NULL) and are not
-- rewritten: the trail is append-only.
ALTER TABLE audit_batches ADD COLUMN strings text, ADD COLUMN prev_hash text;

-- One row per event, from batches of either form, with the same columns
-- as before (CREATE OR REPLACE keeps the view's grants). A batch's strings
-- are parsed once per batch (OFFSET 0 keeps the planner from inlining the
-- subquery into every column).
CREATE OR REPLACE VIEW audit_events AS
SELECT b.first_seq + e.ord - 1 AS seq, (e.v ->> 1)::uuid AS id, (e.v ->> 2)::timestamptz AS at,
    e.v ->> 3 AS actor_type, e.v ->> 4 AS actor_id, e.v ->> 5 AS user_id, e.v ->> 6 AS client_ip,
    e.v ->> 7 AS user_agent, e.v ->> 8 AS request_id, e.v ->> 9 AS route, e.v ->> 10 AS action,
    e.v ->> 11 AS resource_type, e.v ->> 12 AS resource_id, e.v ->> 13 AS outcome,
    e.v ->> 14 AS reason, e.v ->> 15 AS prev_hash, e.v ->> 16 AS hash
FROM audit_batches AS b, json_array_elements(b.events::json) WITH ORDINALITY AS e(v, ord)
WHERE b.strings IS NULL
UNION ALL
SELECT b.first_seq + e.ord - 1 AS seq, (e.v ->> 0)::uuid AS id, (e.v ->> 1)::timestamptz AS at,
    s.j ->> (e.v ->> 2)::int AS actor_type, s.j ->> (e.v ->> 3)::int AS actor_id,
    s.j ->> (e.v ->> 4)::int AS user_id, s.j ->> (e.v ->> 5)::int AS client_ip,
    s.j ->> (e.v ->> 6)::int AS user_agent, e.v ->> 7 AS request_id,
    s.j ->> (e.v ->> 8)::int AS route, s.j ->> (e.v ->> 9)::int AS action,
    s.j ->> (e.v ->> 10)::int AS resource_type, e.v ->> 11 AS resource_id,
    s.j ->> (e.v ->> 12)::int AS outcome, s.j ->> (e.v ->> 13)::int AS reason,
    coalesce(lag(e.v ->> 14) OVER (PARTITION BY b.first_seq ORDER BY e.ord), b.prev_hash) AS prev_hash,
    e.v ->> 14 AS hash
FROM audit_batches AS b
    CROSS JOIN LATERAL (SELECT b.strings::jsonb AS j OFFSET 0) AS s
    CROSS JOIN LATERAL json_array_elements(b.events::json) WITH ORDINALITY AS e(v, ord)
WHERE b.strings IS NOT NULL;
