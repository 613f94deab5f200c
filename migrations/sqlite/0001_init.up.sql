-- Users, sessions, projects and tasks (SQLite).
-- seq is an internal, never-exposed ordering key used for cursor pagination;
-- id is the public random UUID. Times are UTC, written by the application.
-- Tables are not STRICT because DATETIME columns are what lets the driver
-- hand back time.Time values; the CHECK constraints carry the rules.

CREATE TABLE users (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    locked_at     DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

CREATE TABLE sessions (
    id           TEXT     NOT NULL PRIMARY KEY,
    user_id      TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BLOB     NOT NULL UNIQUE,
    created_at   DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE projects (
    seq         INTEGER PRIMARY KEY,
    id          TEXT     NOT NULL UNIQUE,
    owner_id    TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT     NOT NULL,
    description TEXT     NOT NULL DEFAULT '',
    created_at  DATETIME NOT NULL,
    updated_at  DATETIME NOT NULL
);
CREATE INDEX projects_owner_seq ON projects (owner_id, seq);

CREATE TABLE tasks (
    seq        INTEGER PRIMARY KEY,
    id         TEXT     NOT NULL UNIQUE,
    project_id TEXT     NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title      TEXT     NOT NULL,
    done       INTEGER  NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    due_date   TEXT     CHECK (due_date IS NULL OR length(due_date) = 10),
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX tasks_project_seq ON tasks (project_id, seq);
