-- API tokens are credentials, not ledger facts: they live beside the log so that they can be
-- revoked, and only their SHA-256 is kept.
CREATE TABLE api_tokens (
    token_id       TEXT    PRIMARY KEY,
    token_hash     BLOB    NOT NULL UNIQUE,
    organisation   TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    created_at_us  INTEGER NOT NULL,
    revoked_at_us  INTEGER
);

-- The latest snapshot of each projection set, with the position it includes and the version of
-- the code that folded it; a snapshot of another version is discarded and rebuilt.
CREATE TABLE snapshots (
    name           TEXT    PRIMARY KEY,
    version        INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    state          BLOB    NOT NULL,
    taken_at_us    INTEGER NOT NULL
);
