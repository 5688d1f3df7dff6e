-- The append-only event log. Positions are assigned by the appender under an advisory lock,
-- never by a sequence (sequences commit out of order), so that they are gap-free and
-- commit-ordered across every process; the triggers make the append-only rule hold for every
-- client of the database, not only for this service.
CREATE TABLE events (
    position           BIGINT  PRIMARY KEY,
    event_id           UUID    NOT NULL UNIQUE,
    stream             TEXT    NOT NULL,
    stream_version     BIGINT  NOT NULL,
    event_type         TEXT    NOT NULL,
    schema_version     INTEGER NOT NULL,
    occurred_at_us     BIGINT  NOT NULL,
    recorded_at_us     BIGINT  NOT NULL,
    actor_organisation TEXT    NOT NULL,
    actor_role         TEXT    NOT NULL,
    actor_user         TEXT,
    correlation_id     UUID,
    causation_id       UUID,
    data               TEXT    NOT NULL,
    prev_hash          BYTEA   NOT NULL,
    hash               BYTEA   NOT NULL,
    UNIQUE (stream, stream_version)
);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: record a correcting event instead';
END;
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
