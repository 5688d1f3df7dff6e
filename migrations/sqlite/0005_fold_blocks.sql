-- Each group of events committed is also kept as one block in its compact form (see
-- src/store/fold_block.rs): a replay reads a block where it read thousands of rows, and decodes
-- no JSON. The rows stay the log; a block says again what they say. Events appended before this
-- table existed have no block, and a replay reads their rows.
CREATE TABLE fold_blocks (
    first_position INTEGER PRIMARY KEY,
    events         INTEGER NOT NULL,
    bytes          BLOB    NOT NULL
);

CREATE TRIGGER fold_blocks_refuse_update BEFORE UPDATE ON fold_blocks
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;

CREATE TRIGGER fold_blocks_refuse_delete BEFORE DELETE ON fold_blocks
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;
