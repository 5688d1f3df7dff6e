-- The append-only event log. Positions are assigned by the appender, never by the database, so
-- that they are gap-free and commit-ordered; the triggers make the append-only rule hold for
-- every client of the file, not only for this service.
CREATE TABLE events (
    position           INTEGER PRIMARY KEY,
    event_id           TEXT    NOT NULL UNIQUE,
    stream             TEXT    NOT NULL,
    stream_version     INTEGER NOT NULL,
    event_type         TEXT    NOT NULL,
    schema_version     INTEGER NOT NULL,
    occurred_at_us     INTEGER NOT NULL,
    recorded_at_us     INTEGER NOT NULL,
    actor_organisation TEXT    NOT NULL,
    actor_role         TEXT    NOT NULL,
    actor_user         TEXT,
    correlation_id     TEXT,
    causation_id       TEXT,
    data               TEXT    NOT NULL,
    prev_hash          BLOB    NOT NULL,
    hash               BLOB    NOT NULL,
    UNIQUE (stream, stream_version)
);

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;
