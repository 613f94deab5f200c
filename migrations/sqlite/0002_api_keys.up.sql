-- API keys (SQLite). Only the SHA-256 of a key is stored; prefix is the
-- non-secret start of the key, shown in lists so people can tell keys apart.
CREATE TABLE api_keys (
    seq          INTEGER PRIMARY KEY,
    id           TEXT     NOT NULL UNIQUE,
    user_id      TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT     NOT NULL,
    prefix       TEXT     NOT NULL,
    token_hash   BLOB     NOT NULL UNIQUE,
    scopes       TEXT     NOT NULL,
    rate_limit   INTEGER  NOT NULL CHECK (rate_limit > 0),
    expires_at   DATETIME,
    last_used_at DATETIME,
    created_at   DATETIME NOT NULL
);
CREATE INDEX api_keys_user_seq ON api_keys (user_id, seq);
