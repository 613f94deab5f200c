-- Back to 0005's form: every batch written in 0006's form is rewritten
-- with each event as its canonical form and hash, so no event is lost.
-- The append-only trigger is lifted for this statement only (the table's
-- owner runs migrations).
ALTER TABLE audit_batches DISABLE TRIGGER audit_batches_no_change;
UPDATE audit_batches AS b SET
    events = (
        SELECT json_agg(x.v ORDER BY x.ord)::text FROM (
            SELECT e.ord, json_build_array('v1', e.v ->> 0, e.v ->> 1,
                s.j ->> (e.v ->> 2)::int, s.j ->> (e.v ->> 3)::int, s.j ->> (e.v ->> 4)::int,
                s.j ->> (e.v ->> 5)::int, s.j ->> (e.v ->> 6)::int, e.v ->> 7,
                s.j ->> (e.v ->> 8)::int, s.j ->> (e.v ->> 9)::int, s.j ->> (e.v ->> 10)::int, e.v ->> 11,
                s.j ->> (e.v ->> 12)::int, s.j ->> (e.v ->> 13)::int,
                coalesce(lag(e.v ->> 14) OVER (ORDER BY e.ord), b.prev_hash),
                e.v ->> 14) AS v
            FROM (SELECT b.strings::jsonb AS j OFFSET 0) AS s,
                json_array_elements(b.events::json) WITH ORDINALITY AS e(v, ord)
        ) AS x
    ),
    strings = NULL,
    prev_hash = NULL
WHERE b.strings IS NOT NULL;
ALTER TABLE audit_batches ENABLE TRIGGER audit_batches_no_change;

CREATE OR REPLACE VIEW audit_events AS
SELECT b.first_seq + e.ord - 1 AS seq, (e.v ->> 1)::uuid AS id, (e.v ->> 2)::timestamptz AS at,
    e.v ->> 3 AS actor_type, e.v ->> 4 AS actor_id, e.v ->> 5 AS user_id, e.v ->> 6 AS client_ip,
    e.v ->> 7 AS user_agent, e.v ->> 8 AS request_id, e.v ->> 9 AS route, e.v ->> 10 AS action,
    e.v ->> 11 AS resource_type, e.v ->> 12 AS resource_id, e.v ->> 13 AS outcome,
    e.v ->> 14 AS reason, e.v ->> 15 AS prev_hash, e.v ->> 16 AS hash
FROM audit_batches AS b, json_array_elements(b.events::json) WITH ORDINALITY AS e(v, ord);
ALTER TABLE audit_batches DROP COLUMN strings, DROP COLUMN prev_hash;
