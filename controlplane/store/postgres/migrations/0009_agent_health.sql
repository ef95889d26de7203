-- Why an agent is not OPERATIONAL, as its host's health watch said (the
-- Agent Pools API's operationalMessage extension; empty when healthy or
-- not watched).
ALTER TABLE agents ADD COLUMN operational_message TEXT NOT NULL DEFAULT '';
