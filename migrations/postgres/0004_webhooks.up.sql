-- Project webhooks (PostgreSQL). One webhook per project; its signing
-- secret is stored sealed (AES-256-GCM under the webhook_key secret, bound
-- to the project id), never in the clear. Deliveries are a durable queue:
-- an event is a row before anything is sent, so a restart loses none; each
-- attempt is logged without the receiver's response body. Instances claim
-- due deliveries with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE webhooks (
    project_id  uuid        NOT NULL PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         text        NOT NULL CHECK (length(url) <= 2048),
    secret      text        NOT NULL,
    secret_hint text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX webhooks_owner_id ON webhooks (owner_id);

CREATE TABLE webhook_deliveries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              uuid        NOT NULL UNIQUE,
    project_id      uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event           text        NOT NULL,
    payload         text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_project_seq ON webhook_deliveries (project_id, seq);

CREATE TABLE webhook_attempts (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    project_id  uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL CHECK (attempt > 0),
    at          timestamptz NOT NULL,
    status_code integer,
    latency_ms  integer     NOT NULL CHECK (latency_ms >= 0),
    error_class text        NOT NULL,
    UNIQUE (delivery_id, attempt)
);
CREATE INDEX webhook_attempts_project_seq ON webhook_attempts (project_id, seq);
