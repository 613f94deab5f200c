-- Back to one row per event (0003's table), events and seqs kept.
CREATE TABLE audit_events_rows (
    seq           INTEGER PRIMARY KEY,
    id            TEXT     NOT NULL UNIQUE,
    at            DATETIME NOT NULL,
    actor_type    TEXT     NOT NULL CHECK (actor_type IN ('anonymous', 'user', 'apikey', 'service', 'system')),
    actor_id      TEXT     NOT NULL,
    user_id       TEXT     NOT NULL,
    client_ip     TEXT     NOT NULL,
    user_agent    TEXT     NOT NULL,
    request_id    TEXT     NOT NULL,
    route         TEXT     NOT NULL,
    action        TEXT     NOT NULL,
    resource_type TEXT     NOT NULL,
    resource_id   TEXT     NOT NULL,
    outcome       TEXT     NOT NULL CHECK (outcome IN ('allow', 'deny', 'error')),
    reason        TEXT     NOT NULL,
    prev_hash     TEXT     NOT NULL,
    hash          TEXT     NOT NULL
);
-- A time goes back to the form the driver writes for a bound time (as the
-- old writer stored it): the canonical "2006-01-02T15:04:05.000000Z"
-- becomes "2006-01-02 15:04:05+00:00" with the fraction's trailing zeros
-- (and a bare '.') dropped. A mix of the two forms would compare as text
-- in the wrong order ('T' sorts after ' '): the old List's "at >= ?", and
-- 0005's max(at) when migrating up again.
INSERT INTO audit_events_rows
SELECT seq, id,
    CASE WHEN at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
        THEN substr(at, 1, 10) || ' ' || substr(at, 12, 8) || rtrim(rtrim(substr(at, 20, 7), '0'), '.') || '+00:00'
        ELSE at END,
    actor_type, actor_id, user_id, client_ip, user_agent, request_id, route, action,
    resource_type, resource_id, outcome, reason, prev_hash, hash
FROM audit_events ORDER BY seq;
DROP VIEW audit_events;
DROP TABLE audit_batches;
ALTER TABLE audit_events_rows RENAME TO audit_events;
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq) OR EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
