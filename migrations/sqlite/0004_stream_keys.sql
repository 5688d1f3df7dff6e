-- Streams are numbered in the order they first appear, and an event names its stream by that
-- number. An index keyed by names (about 60 bytes an entry) had each append dirty a page of its
-- own, scattered over the streams still active: importing the region year spent three quarters
-- of SQLite's time writing those pages back. Keyed by number, an entry takes about 12 bytes and
-- recent streams share pages. The name is kept once, in `streams`, so the two cannot disagree.
CREATE TABLE streams (
    stream_key INTEGER PRIMARY KEY,
    stream     TEXT    NOT NULL UNIQUE
);

INSERT INTO streams (stream)
SELECT stream FROM events GROUP BY stream ORDER BY MIN(position);

DROP TRIGGER events_refuse_update;
DROP TRIGGER events_refuse_delete;

CREATE TABLE events_keyed (
    position           INTEGER PRIMARY KEY,
    event_id           TEXT    NOT NULL UNIQUE,
    stream_key         INTEGER NOT NULL REFERENCES streams (stream_key),
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
    UNIQUE (stream_key, stream_version)
);

INSERT INTO events_keyed
SELECT e.position, e.event_id, s.stream_key, e.stream_version, e.event_type, e.schema_version,
       e.occurred_at_us, e.recorded_at_us, e.actor_organisation, e.actor_role, e.actor_user,
       e.correlation_id, e.causation_id, e.data, e.prev_hash, e.hash
FROM events e JOIN streams s ON s.stream = e.stream
ORDER BY e.position;

DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: record a correcting event instead');
END;

CREATE TRIGGER streams_refuse_update BEFORE UPDATE ON streams
BEGIN
    SELECT RAISE(ABORT, 'a stream keeps its number');
END;

CREATE TRIGGER streams_refuse_delete BEFORE DELETE ON streams
BEGIN
    SELECT RAISE(ABORT, 'a stream keeps its number');
END;
