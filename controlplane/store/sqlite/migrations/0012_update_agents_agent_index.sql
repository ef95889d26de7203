-- update_agents is read by its primary key (update_id, agent_id), by job_id
-- and by revision; no query looks an agent up alone. The index on agent_id
-- served none of them, and every row a dispatch wrote paid an insert at a
-- random place of it.
DROP INDEX IF EXISTS update_agents_agent;
