-- The audit log: who changed what, when (never a secret).
CREATE TABLE audit_log (
    seq           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    at            BIGINT  NOT NULL,
    actor_kind    TEXT    NOT NULL,
    actor_id      TEXT    NOT NULL DEFAULT '',
    actor_name    TEXT    NOT NULL DEFAULT '',
    action        TEXT    NOT NULL,
    pool_id       TEXT    NOT NULL DEFAULT '',
    update_id     TEXT    NOT NULL DEFAULT '',
    target        TEXT    NOT NULL DEFAULT '',
    status_before TEXT    NOT NULL DEFAULT '',
    status_after  TEXT    NOT NULL DEFAULT '',
    detail        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
