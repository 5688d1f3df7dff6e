-- One round trip for the common append: the appender computes positions and hashes from the
-- head it last wrote, and this function, under the same advisory lock as every appender, writes
-- them only if that head is still the log's head. It returns false when another process has
-- appended since, and a unique violation (a stream version or event id already taken) aborts it;
-- either way the appender falls back to reading the log's state under the lock.
CREATE FUNCTION followfund_append(
    expected_head      BIGINT,
    positions          BIGINT[],
    event_ids          UUID[],
    streams            TEXT[],
    stream_versions    BIGINT[],
    event_types        TEXT[],
    schema_versions    INTEGER[],
    occurred_at_us     BIGINT[],
    recorded_at_us     BIGINT[],
    actor_orgs         TEXT[],
    actor_roles        TEXT[],
    actor_users        TEXT[],
    correlation_ids    UUID[],
    causation_ids      UUID[],
    datas              TEXT[],
    prev_hashes        BYTEA[],
    hashes             BYTEA[]
) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    head BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(4628496016746583);
    SELECT e.position INTO head FROM events e ORDER BY e.position DESC LIMIT 1;
    IF COALESCE(head, 0) <> expected_head THEN
        RETURN FALSE;
    END IF;
    INSERT INTO events (position, event_id, stream, stream_version, event_type, schema_version,
                        occurred_at_us, recorded_at_us, actor_organisation, actor_role, actor_user,
                        correlation_id, causation_id, data, prev_hash, hash)
    SELECT * FROM UNNEST(positions, event_ids, streams, stream_versions, event_types,
                         schema_versions, occurred_at_us, recorded_at_us, actor_orgs, actor_roles,
                         actor_users, correlation_ids, causation_ids, datas, prev_hashes, hashes);
    PERFORM pg_notify('followfund_events', positions[array_upper(positions, 1)]::TEXT);
    RETURN TRUE;
END;
$$;
