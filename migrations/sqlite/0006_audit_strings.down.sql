-- Back to 0005's form: every batch written in 0006's form is rewritten
-- with each event as its canonical form and hash,
-- so no event is lost. The append-only trigger is lifted for this
-- statement only.
DROP TRIGGER audit_batches_no_update;
UPDATE audit_batches SET
    events = (
        SELECT json_group_array(json(v) ORDER BY k) FROM (
            SELECT e.key AS k, json_array('v1', e.value ->> 0, e.value ->> 1,
                audit_batches.strings ->> (e.value ->> 2), audit_batches.strings ->> (e.value ->> 3),
                audit_batches.strings ->> (e.value ->> 4), audit_batches.strings ->> (e.value ->> 5),
                audit_batches.strings ->> (e.value ->> 6), e.value ->> 7,
                audit_batches.strings ->> (e.value ->> 8), audit_batches.strings ->> (e.value ->> 9),
                audit_batches.strings ->> (e.value ->> 10), e.value ->> 11,
                audit_batches.strings ->> (e.value ->> 12), audit_batches.strings ->> (e.value ->> 13),
                coalesce(lag(e.value ->> 14) OVER (ORDER BY e.key), audit_batches.prev_hash),
                e.value ->> 14) AS v
            FROM json_each(audit_batches.events) AS e
        )
    ),
    strings = NULL,
    prev_hash = NULL
WHERE strings IS NOT NULL;
CREATE TRIGGER audit_batches_no_update BEFORE UPDATE ON audit_batches
BEGIN
    SELECT RAISE(ABORT, 'audit_batches is append-only');
END;

DROP VIEW audit_events;
ALTER TABLE audit_batches DROP COLUMN strings;
ALTER TABLE audit_batches DROP COLUMN prev_hash;
CREATE VIEW audit_events AS
SELECT b.first_seq + e.key AS seq, e.value ->> 1 AS id, e.value ->> 2 AS at, e.value ->> 3 AS actor_type,
    e.value ->> 4 AS actor_id, e.value ->> 5 AS user_id, e.value ->> 6 AS client_ip, e.value ->> 7 AS user_agent,
    e.value ->> 8 AS request_id, e.value ->> 9 AS route, e.value ->> 10 AS action,
    e.value ->> 11 AS resource_type, e.value ->> 12 AS resource_id, e.value ->> 13 AS outcome,
    e.value ->> 14 AS reason, e.value ->> 15 AS prev_hash, e.value ->> 16 AS hash
FROM audit_batches AS b, json_each(b.events) AS e;
