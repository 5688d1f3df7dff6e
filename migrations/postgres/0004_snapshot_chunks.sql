-- A snapshot's state is kept in numbered chunks: the read models of a large year outgrow the
-- largest value one row may hold. `chunks` is 0 for a snapshot kept whole in `state`.
CREATE TABLE snapshot_chunks (
    name   TEXT    NOT NULL,
    chunk  INTEGER NOT NULL,
    bytes  BYTEA   NOT NULL,
    PRIMARY KEY (name, chunk)
);

ALTER TABLE snapshots ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
