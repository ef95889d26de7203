-- The change feed (Store.ChangesSince): every write to updates,
-- update_agents, agents and clients stamps its rows with the revision of
-- its transaction, taken from the 'rev' counter. Rows written before get
-- revision 1, where the counter starts (0 is an insert in WriteRollout).
-- Deleted updates and agents removed from an update leave a tombstone with
-- the revision of the delete.
ALTER TABLE updates ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE update_agents ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
UPDATE updates SET rev = 1;
UPDATE update_agents SET rev = 1;
UPDATE agents SET rev = 1;
UPDATE clients SET rev = 1;
CREATE INDEX updates_rev ON updates (rev);
CREATE INDEX update_agents_rev ON update_agents (rev);
CREATE INDEX agents_rev ON agents (rev);
CREATE INDEX clients_rev ON clients (rev);

CREATE TABLE deleted_updates (
    id      TEXT    PRIMARY KEY,
    pool_id TEXT    NOT NULL,
    rev     BIGINT  NOT NULL
);
CREATE INDEX deleted_updates_rev ON deleted_updates (rev);

CREATE TABLE removed_update_agents (
    update_id TEXT    NOT NULL,
    agent_id  TEXT    NOT NULL,
    rev       BIGINT  NOT NULL,
    PRIMARY KEY (update_id, agent_id)
);
CREATE INDEX removed_update_agents_rev ON removed_update_agents (rev);

INSERT INTO counters (name, value) VALUES ('rev', 1) ON CONFLICT (name) DO NOTHING;
