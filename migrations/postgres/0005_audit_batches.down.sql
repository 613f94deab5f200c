-- Back to one row per event (0003's table), events and seqs kept.
CREATE TABLE audit_events_rows (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            uuid        NOT NULL UNIQUE,
    at            timestamptz NOT NULL,
    actor_type    text        NOT NULL CHECK (actor_type IN ('anonymous', 'user', 'apikey', 'service', 'system')),
    actor_id      text        NOT NULL,
    user_id       text        NOT NULL,
    client_ip     text        NOT NULL,
    user_agent    text        NOT NULL,
    request_id    text        NOT NULL,
    route         text        NOT NULL,
    action        text        NOT NULL,
    resource_type text        NOT NULL,
    resource_id   text        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('allow', 'deny', 'error')),
    reason        text        NOT NULL,
    prev_hash     text        NOT NULL,
    hash          text        NOT NULL
);
INSERT INTO audit_events_rows OVERRIDING SYSTEM VALUE SELECT * FROM audit_events ORDER BY seq;
SELECT setval(pg_get_serial_sequence('audit_events_rows', 'seq'), GREATEST((SELECT max(seq) FROM audit_events_rows), 1));
DROP VIEW audit_events;
DROP TABLE audit_batches;
DROP FUNCTION audit_batches_append_only();
ALTER TABLE audit_events_rows RENAME TO audit_events;
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
