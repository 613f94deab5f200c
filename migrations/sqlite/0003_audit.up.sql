-- Audit trail (SQLite). Append-only: triggers refuse UPDATE and DELETE.
-- Each row's hash covers its canonical content and the previous row's
-- hash (models/audit.go); audit_head holds the newest hash, so that a
-- deleted tail is caught too, and its row is the writers' lock.
CREATE TABLE audit_events (
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
-- INSERT OR REPLACE deletes the row it replaces without firing delete
-- triggers (unless recursive_triggers is on): refuse any insert that
-- would replace a row.
CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq) OR EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER  NOT NULL,
    hash      TEXT     NOT NULL,
    locked_at DATETIME
);
INSERT INTO audit_head (id, last_seq, hash) VALUES (1, 0, '');

-- Countries each account has logged in from (anomaly rule "new country").
CREATE TABLE account_countries (
    user_id    TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country    TEXT     NOT NULL,
    first_seen DATETIME NOT NULL,
    PRIMARY KEY (user_id, country)
);
