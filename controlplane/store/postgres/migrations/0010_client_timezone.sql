-- The IANA time zone a host reports in its heartbeat (extension), for
-- maintenance windows in each host's local time.
ALTER TABLE clients ADD COLUMN timezone TEXT NOT NULL DEFAULT '';
