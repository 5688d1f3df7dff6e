//! Deciding a group commit: given what the log holds under the write lock, which requests are
//! written, at which positions, and which are refused or answered from an earlier append.
//! Pure, so every backend decides exactly alike.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use super::event::{ExpectedVersion, NewEvent, RecordedEvent};
use super::hash::{Hash, chain_hash};

/// One caller's atomic batch and the stream versions it expects.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The events, written all together or not at all.
    pub events: Vec<NewEvent>,
    /// Expected versions of streams; streams not named are not checked.
    pub expected: Vec<(String, ExpectedVersion)>,
}

/// The answer to an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The position of each event, in the order given.
    pub positions: Vec<u64>,
    /// False when every event was already in the log with the same content (a retry).
    pub written: bool,
}

/// What a backend read under its write lock: the chain's head, the current version of every
/// stream the group touches, and any events already stored under the group's ids.
#[derive(Clone, Debug, Default)]
pub struct LogState {
    /// The last position (0 when empty).
    pub head_position: u64,
    /// The hash of the last event (zeros when empty).
    pub head_hash: Hash,
    /// Current version per stream; a stream absent here has version 0.
    pub stream_versions: HashMap<String, u64>,
    /// Stored events whose ids appear in the group.
    pub existing: HashMap<Uuid, RecordedEvent>,
}

/// The decision for a group: rows to insert in one transaction, and one answer per request.
#[derive(Debug)]
pub struct GroupPlan {
    /// New rows, in position order.
    pub rows: Vec<RecordedEvent>,
    /// One answer per request, in request order.
    pub answers: Vec<Result<Appended, StoreError>>,
}

/// Streams and ids a group needs looked up before it can be planned.
pub fn keys(requests: &[&AppendRequest]) -> (Vec<String>, Vec<Uuid>) {
    let mut streams = HashSet::new();
    let mut ids = Vec::new();
    for request in requests {
        for event in &request.events {
            streams.insert(event.stream.clone());
            ids.push(event.event_id);
        }
        for (stream, _) in &request.expected {
            streams.insert(stream.clone());
        }
    }
    (streams.into_iter().collect(), ids)
}

/// Decides every request in order, as if each had been appended alone.
pub fn plan(
    mut state: LogState,
    requests: &[&AppendRequest],
    recorded_at: DateTime<Utc>,
) -> GroupPlan {
    let mut rows: Vec<RecordedEvent> = Vec::new();
    // Rows this group writes, by id, so a later request retrying an earlier one is answered
    // from them: an index into `rows` rather than a copy of each row.
    let mut written: HashMap<Uuid, usize> = HashMap::new();
    let mut answers = Vec::with_capacity(requests.len());
    for request in requests {
        let stored = |event_id: &Uuid| {
            let row = written.get(event_id).map(|index| &rows[*index]);
            row.or_else(|| state.existing.get(event_id))
        };
        let answer = decide(&state, stored, request);
        if let Ok(Decision::Write) = answer {
            let first_row = rows.len();
            write(&mut state, &mut rows, request, recorded_at);
            let positions = rows[first_row..].iter().map(|row| row.position).collect();
            for (index, row) in rows.iter().enumerate().skip(first_row) {
                written.insert(row.event_id, index);
            }
            answers.push(Ok(Appended {
                positions,
                written: true,
            }));
        } else {
            answers.push(answer.map(|decision| match decision {
                Decision::Retry(positions) => Appended {
                    positions,
                    written: false,
                },
                Decision::Write => unreachable!("handled above"),
            }));
        }
    }
    GroupPlan { rows, answers }
}

/// The events a planned group writes, in the order of its rows: those of the requests it writes,
/// in request order.
pub fn written_events<'a>(
    requests: &[&'a AppendRequest],
    plan: &GroupPlan,
) -> impl Iterator<Item = &'a NewEvent> {
    let written = requests
        .iter()
        .zip(&plan.answers)
        .filter_map(|(request, answer)| {
            matches!(answer, Ok(Appended { written: true, .. })).then_some(&request.events)
        });
    let events: Vec<&NewEvent> = written.flatten().collect();
    assert_eq!(
        events.len(),
        plan.rows.len(),
        "a row for each event written"
    );
    for (event, row) in events.iter().zip(&plan.rows) {
        debug_assert_eq!(event.event_id, row.event_id, "rows in the order written");
    }
    events.into_iter()
}

enum Decision {
    Write,
    Retry(Vec<u64>),
}

/// `stored` finds an event already in the log, or written earlier in this group, by its id.
fn decide<'a>(
    state: &LogState,
    stored: impl Fn(&Uuid) -> Option<&'a RecordedEvent>,
    request: &AppendRequest,
) -> Result<Decision, StoreError> {
    let mut seen = HashSet::new();
    let mut known = Vec::new();
    for event in &request.events {
        if !seen.insert(event.event_id) {
            return Err(StoreError::DuplicateInBatch {
                event_id: event.event_id,
            });
        }
        if let Some(stored) = stored(&event.event_id) {
            if !event.same_content(stored) {
                return Err(StoreError::EventIdReused {
                    event_id: event.event_id,
                    position: stored.position,
                });
            }
            known.push(stored.position);
        }
    }
    if !known.is_empty() {
        if known.len() == request.events.len() {
            return Ok(Decision::Retry(known));
        }
        let first_stored = request
            .events
            .iter()
            .find(|e| stored(&e.event_id).is_some());
        return Err(StoreError::PartlyAppended {
            event_id: first_stored.expect("at least one is known").event_id,
        });
    }
    for (stream, expected) in &request.expected {
        let actual = state.stream_versions.get(stream).copied().unwrap_or(0);
        if !expected.admits(actual) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected: *expected,
                actual,
            });
        }
    }
    Ok(Decision::Write)
}

fn write(
    state: &mut LogState,
    rows: &mut Vec<RecordedEvent>,
    request: &AppendRequest,
    recorded_at: DateTime<Utc>,
) {
    for event in &request.events {
        let version = state
            .stream_versions
            .entry(event.stream.clone())
            .or_insert(0);
        *version += 1;
        let mut row = RecordedEvent {
            position: state.head_position + 1,
            event_id: event.event_id,
            stream: event.stream.clone(),
            stream_version: *version,
            event_type: event.event_type.to_string(),
            schema_version: event.schema_version,
            occurred_at: event.occurred_at,
            recorded_at: event.recorded_at.unwrap_or(recorded_at),
            actor: event.actor.clone(),
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            data: event.data.clone(),
            prev_hash: state.head_hash,
            hash: Hash::GENESIS,
        };
        row.hash = chain_hash(&row.prev_hash, &row);
        state.head_position = row.position;
        state.head_hash = row.hash;
        rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::event::Actor;

    fn event(stream: &str) -> NewEvent {
        let data = serde_json::json!({
            "organisation": "RX1", "name": "Walk Together", "role": "provider",
            "nation": "england", "parent": null,
        });
        NewEvent::from_parts(
            Uuid::now_v7(),
            stream.into(),
            "organisation.registered",
            1,
            data,
            Actor::admin_cli(),
            Utc::now(),
        )
        .expect("a valid sample event")
    }

    fn request(events: Vec<NewEvent>, expected: Vec<(String, ExpectedVersion)>) -> AppendRequest {
        AppendRequest { events, expected }
    }

    #[test]
    fn positions_versions_and_chain() {
        let a = request(vec![event("s-1"), event("s-2"), event("s-1")], vec![]);
        let plan = plan(LogState::default(), &[&a], Utc::now());
        let versions: Vec<_> = plan
            .rows
            .iter()
            .map(|r| (r.position, r.stream_version))
            .collect();
        assert_eq!(versions, vec![(1, 1), (2, 1), (3, 2)]);
        assert_eq!(plan.rows[0].prev_hash, Hash::GENESIS);
        assert_eq!(plan.rows[1].prev_hash, plan.rows[0].hash);
        assert_eq!(plan.answers[0].as_ref().unwrap().positions, vec![1, 2, 3]);
    }

    #[test]
    fn conflict_names_stream_and_versions_and_spares_the_rest() {
        let stale = request(
            vec![event("s-1")],
            vec![("s-1".into(), ExpectedVersion::Exact(4))],
        );
        let fine = request(
            vec![event("s-1")],
            vec![("s-1".into(), ExpectedVersion::Exact(2))],
        );
        let mut state = LogState {
            head_position: 10,
            ..Default::default()
        };
        state.stream_versions.insert("s-1".into(), 2);
        let plan = plan(state, &[&stale, &fine], Utc::now());
        match &plan.answers[0] {
            Err(StoreError::Conflict {
                stream,
                expected,
                actual,
            }) => {
                assert_eq!(
                    (stream.as_str(), *expected, *actual),
                    ("s-1", ExpectedVersion::Exact(4), 2)
                );
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(plan.answers[1].as_ref().unwrap().positions, vec![11]);
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].stream_version, 3);
    }

    #[test]
    fn retry_in_the_same_group_is_answered_not_written() {
        let first = request(vec![event("s-1")], vec![]);
        let again = first.clone();
        let plan = plan(LogState::default(), &[&first, &again], Utc::now());
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(
            plan.answers[1].as_ref().unwrap(),
            &Appended {
                positions: vec![1],
                written: false
            }
        );
    }

    #[test]
    fn reused_id_with_other_content_is_refused() {
        let first = request(vec![event("s-1")], vec![]);
        let mut other = first.clone();
        other.events[0].stream = "s-2".into();
        let plan = plan(LogState::default(), &[&first, &other], Utc::now());
        assert!(matches!(
            plan.answers[1],
            Err(StoreError::EventIdReused { position: 1, .. })
        ));
    }

    #[test]
    fn duplicate_id_within_a_batch_is_refused() {
        let e = event("s-1");
        let dup = request(vec![e.clone(), e], vec![]);
        let plan = plan(LogState::default(), &[&dup], Utc::now());
        assert!(matches!(
            plan.answers[0],
            Err(StoreError::DuplicateInBatch { .. })
        ));
        assert!(plan.rows.is_empty());
    }
}
