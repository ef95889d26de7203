-- Binary patches from earlier releases of the same name and platform to a
-- release, built at publish (poolserver release publish --deltas K).
CREATE TABLE release_patches (
    release_seq  BIGINT  NOT NULL REFERENCES releases (seq) ON DELETE CASCADE,
    position     INTEGER NOT NULL, -- the order publish built them in
    from_version TEXT    NOT NULL,
    from_sha256  TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    PRIMARY KEY (release_seq, from_version)
);
