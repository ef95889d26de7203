-- A pool's artifact mirrors (extension): base URLs, one per line, in the
-- order agents try them.
ALTER TABLE pools ADD COLUMN artifact_mirrors TEXT NOT NULL DEFAULT '';
