-- Project webhooks (SQLite). One webhook per project; its signing secret is
-- stored sealed (AES-256-GCM under the webhook_key secret, bound to the
-- project id), never in the clear. Deliveries are a durable queue: an event
-- is a row before anything is sent, so a restart loses none; each attempt
-- is logged without the receiver's response body.
CREATE TABLE webhooks (
    project_id  TEXT     NOT NULL PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    owner_id    TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         TEXT     NOT NULL CHECK (length(url) <= 2048),
    secret      TEXT     NOT NULL,
    secret_hint TEXT     NOT NULL,
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
CREATE INDEX webhooks_owner_id ON webhooks (owner_id);

CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY,
    id              TEXT     NOT NULL UNIQUE,
    project_id      TEXT     NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event           TEXT     NOT NULL,
    payload         TEXT     NOT NULL,
    state           TEXT     NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at DATETIME NOT NULL,
    lease_until     DATETIME,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_project_seq ON webhook_deliveries (project_id, seq);

CREATE TABLE webhook_attempts (
    seq         INTEGER  PRIMARY KEY,
    delivery_id TEXT     NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    project_id  TEXT     NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    attempt     INTEGER  NOT NULL CHECK (attempt > 0),
    at          DATETIME NOT NULL,
    status_code INTEGER,
    latency_ms  INTEGER  NOT NULL CHECK (latency_ms >= 0),
    error_class TEXT     NOT NULL,
    UNIQUE (delivery_id, attempt)
);
CREATE INDEX webhook_attempts_project_seq ON webhook_attempts (project_id, seq);
