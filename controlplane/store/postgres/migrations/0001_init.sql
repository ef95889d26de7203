-- Pools, agents, updates and API tokens. Times are Unix milliseconds
-- (BIGINT), as in the SQLite backend's 0001_init.sql.
CREATE TABLE pools (
    seq                       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                        TEXT    NOT NULL UNIQUE,
    name                      TEXT    NOT NULL,
    type                      TEXT    NOT NULL,
    release_channel           TEXT    NOT NULL DEFAULT 'GA',
    continue_on_error         BOOLEAN NOT NULL DEFAULT FALSE,
    latest_version            TEXT    NOT NULL DEFAULT '',
    minimal_supported_version TEXT    NOT NULL DEFAULT '',
    created_at                BIGINT  NOT NULL
);
CREATE INDEX pools_type_seq ON pools (type, seq);

CREATE TABLE agents (
    seq                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 TEXT    NOT NULL UNIQUE,
    pool_id            TEXT    NOT NULL REFERENCES pools (id),
    client_id          TEXT    NOT NULL DEFAULT '',
    name               TEXT    NOT NULL,
    type               TEXT    NOT NULL,
    version            TEXT    NOT NULL DEFAULT '',
    last_connection    BIGINT  NOT NULL DEFAULT 0,
    operational_status TEXT    NOT NULL DEFAULT 'INACTIVE',
    is_hidden          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX agents_pool ON agents (pool_id, seq);
CREATE INDEX agents_client ON agents (client_id);

CREATE TABLE updates (
    seq               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    pool_id           TEXT    NOT NULL REFERENCES pools (id),
    name              TEXT    NOT NULL DEFAULT '',
    agent_type        TEXT    NOT NULL,
    enabled           BOOLEAN NOT NULL,
    notify_admin      BOOLEAN NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    sort_order        INTEGER NOT NULL DEFAULT 0,
    status            TEXT    NOT NULL,
    resume_status     TEXT    NOT NULL DEFAULT '',
    target_version    TEXT    NOT NULL DEFAULT '',
    has_schedule      BOOLEAN NOT NULL,
    schedule_cron     TEXT    NOT NULL DEFAULT '',
    schedule_timezone TEXT    NOT NULL DEFAULT '',
    schedule_delay    INTEGER,
    schedule_duration INTEGER,
    schedule_last     BIGINT  NOT NULL DEFAULT 0,
    all_agents        BOOLEAN NOT NULL,
    created_at        BIGINT  NOT NULL,
    modified_at       BIGINT  NOT NULL
);
CREATE INDEX updates_pool ON updates (pool_id, seq);

CREATE TABLE update_agents (
    update_id   TEXT    NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    agent_id    TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    message     TEXT    NOT NULL DEFAULT '',
    modified_at BIGINT  NOT NULL,
    PRIMARY KEY (update_id, agent_id)
);
CREATE INDEX update_agents_agent ON update_agents (agent_id);

CREATE TABLE tokens (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BYTEA   NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL DEFAULT 0
);
