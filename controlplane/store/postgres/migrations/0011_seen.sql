-- Keep-alive heartbeats move only a host's last-seen time. They write it
-- here, one narrow row per host, instead of rewriting the host's client
-- row (with its facts) and its agents' rows: at 300,000 hosts that rewrite
-- was a fifth of an idle server's CPU. Readers take the later of this time
-- and the row's own (clients.last_seen, agents.last_connection), which
-- heartbeats that change something still write.
CREATE TABLE seen (
    seen_client TEXT    PRIMARY KEY,
    seen_at     BIGINT  NOT NULL
);
