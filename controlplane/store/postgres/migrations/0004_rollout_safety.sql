-- Rollout safety: the pool's availability guard, an update's rollout policy
-- and wave state (JSON), the version an agent started from, diagnostics.
ALTER TABLE pools ADD COLUMN min_operational INTEGER NOT NULL DEFAULT 2;
ALTER TABLE pools ADD COLUMN require_all_connected BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE updates ADD COLUMN rollout TEXT NOT NULL DEFAULT '';
ALTER TABLE update_agents ADD COLUMN from_version TEXT NOT NULL DEFAULT '';
ALTER TABLE update_agents ADD COLUMN diagnostics TEXT NOT NULL DEFAULT '';
