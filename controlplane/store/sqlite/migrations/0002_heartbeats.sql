-- Managed clients (hosts), the release catalog, enrollment tokens and the
-- job columns of update_agents.
CREATE TABLE clients (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    pool_id       TEXT    NOT NULL REFERENCES pools (id),
    secret_hash   BLOB    NOT NULL UNIQUE,
    type          TEXT    NOT NULL DEFAULT '',
    hostname      TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT '',
    os            TEXT    NOT NULL DEFAULT '',
    arch          TEXT    NOT NULL DEFAULT '',
    agent_version TEXT    NOT NULL DEFAULT '',
    facts         TEXT    NOT NULL DEFAULT '{}',
    last_seen     INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX clients_pool ON clients (pool_id, seq);

CREATE TABLE releases (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    os           TEXT    NOT NULL,
    arch         TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    signature    TEXT    NOT NULL,
    published_at INTEGER NOT NULL,
    UNIQUE (name, version, os, arch)
);

CREATE TABLE enroll_tokens (
    hash       BLOB    PRIMARY KEY,
    pool_id    TEXT    NOT NULL REFERENCES pools (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0,
    client_id  TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);

ALTER TABLE agents ADD COLUMN agent_name TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX agents_client_name ON agents (client_id, agent_name) WHERE client_id != '';

ALTER TABLE update_agents ADD COLUMN job_id TEXT NOT NULL DEFAULT '';
ALTER TABLE update_agents ADD COLUMN job_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN dispatched_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN progress INTEGER NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN phase TEXT NOT NULL DEFAULT '';
CREATE INDEX update_agents_job ON update_agents (job_id) WHERE job_id != '';

ALTER TABLE updates ADD COLUMN allow_downgrade INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN max_unavailable INTEGER NOT NULL DEFAULT 1;
