-- API keys (PostgreSQL). Only the SHA-256 of a key is stored; prefix is the
-- non-secret start of the key, shown in lists so people can tell keys apart.
CREATE TABLE api_keys (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    scopes       text        NOT NULL,
    rate_limit   integer     NOT NULL CHECK (rate_limit > 0),
    expires_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX api_keys_user_seq ON api_keys (user_id, seq);
