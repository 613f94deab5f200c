-- Audit trail (PostgreSQL). Append-only: a trigger refuses UPDATE, DELETE
-- and TRUNCATE, for every role including the owner. In production, run
-- the migrations as the owner and the server as a role granted only
-- SELECT and INSERT on audit_events (README, "Audit trail"), so that the
-- server cannot drop the trigger either. Each row's hash covers its
-- canonical content and the previous row's hash (models/audit.go);
-- audit_head holds the newest hash, so that a deleted tail is caught too,
-- and its row is the writers' lock across instances.
CREATE TABLE audit_events (
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

CREATE TABLE audit_head (
    id        integer     PRIMARY KEY CHECK (id = 1),
    last_seq  bigint      NOT NULL,
    hash      text        NOT NULL,
    locked_at timestamptz
);
INSERT INTO audit_head (id, last_seq, hash) VALUES (1, 0, '');

-- Countries each account has logged in from (anomaly rule "new country").
CREATE TABLE account_countries (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country    text        NOT NULL,
    first_seen timestamptz NOT NULL,
    PRIMARY KEY (user_id, country)
);
