-- Managed clients (hosts), the release catalog, enrollment tokens and the
-- job columns of update_agents, as in the SQLite backend's
-- 0002_heartbeats.sql.
CREATE TABLE clients (
    seq           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    pool_id       TEXT    NOT NULL REFERENCES pools (id),
    secret_hash   BYTEA   NOT NULL UNIQUE,
    type          TEXT    NOT NULL DEFAULT '',
    hostname      TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT '',
    os            TEXT    NOT NULL DEFAULT '',
    arch          TEXT    NOT NULL DEFAULT '',
    agent_version TEXT    NOT NULL DEFAULT '',
    facts         TEXT    NOT NULL DEFAULT '{}',
    last_seen     BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX clients_pool ON clients (pool_id, seq);

CREATE TABLE releases (
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    os           TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    signature    TEXT    NOT NULL,
    published_at BIGINT  NOT NULL,
    UNIQUE (name, version, os, arch)
);

CREATE TABLE enroll_tokens (
    hash       BYTEA   PRIMARY KEY,
    pool_id    TEXT    NOT NULL REFERENCES pools (id),
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT  NOT NULL DEFAULT 0,
    client_id  TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value BIGINT  NOT NULL
);

ALTER TABLE agents ADD COLUMN agent_name TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX agents_client_name ON agents (client_id, agent_name) WHERE client_id <> '';

ALTER TABLE update_agents ADD COLUMN job_id TEXT NOT NULL DEFAULT '';
ALTER TABLE update_agents ADD COLUMN job_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN dispatched_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN progress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN phase TEXT NOT NULL DEFAULT '';
CREATE INDEX update_agents_job ON update_agents (job_id) WHERE job_id <> '';

ALTER TABLE updates ADD COLUMN allow_downgrade BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE pools ADD COLUMN max_unavailable INTEGER NOT NULL DEFAULT 1;
