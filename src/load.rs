//! Synthetic append load: many tasks appending referral events at once, each acknowledgement
//! printed as it arrives. Used by the crash and multi-process tests and for quick measurements.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::store::{Actor, NewEvent, Store, StoreError};

/// How much load to make.
#[derive(Clone, Copy, Debug)]
pub struct LoadPlan {
    /// Events in all.
    pub events: u64,
    /// Tasks appending at once.
    pub appenders: usize,
    /// Events per append.
    pub batch_events: usize,
}

/// A valid `referral.received` event in its own stream.
pub fn referral_received(sequence: u64) -> NewEvent {
    let referral_id = Uuid::now_v7();
    let data = json!({
        "referral_id": referral_id,
        "person_id": Uuid::now_v7(),
        "source": "gp_practice",
        "referrer": "A81001",
        "link_worker_organisation": "RX1LW",
        "reasons": ["loneliness", "mental_wellbeing"],
        "age_band": if sequence.is_multiple_of(2) { "40-54" } else { "65-74" },
        "conditions": ["diabetes"],
    });
    let actor = Actor {
        organisation: "RX1LW".into(),
        role: "anchor".into(),
        user: None,
    };
    NewEvent::from_parts(
        Uuid::now_v7(),
        format!("referral-{referral_id}"),
        "referral.received",
        1,
        data,
        actor,
        Utc::now(),
    )
    .expect("the synthetic referral is valid")
}

/// Runs the load; every acknowledged append prints `ack <event_id> <position>` per event to
/// `acks` before the next append of that task starts.
pub async fn run(
    store: &Store,
    plan: LoadPlan,
    acks: Arc<std::sync::Mutex<dyn Write + Send>>,
) -> Result<u64, StoreError> {
    let issued = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..plan.appenders.max(1) {
        let (store, issued, acks) = (store.clone(), issued.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let start = issued.fetch_add(plan.batch_events as u64, Ordering::Relaxed);
                if start >= plan.events {
                    return Ok::<(), StoreError>(());
                }
                let count = (plan.events - start).min(plan.batch_events as u64);
                let events: Vec<NewEvent> = (start..start + count).map(referral_received).collect();
                let ids: Vec<Uuid> = events.iter().map(NewEvent::event_id).collect();
                let appended = store.append(events, Vec::new()).await?;
                let mut out = acks.lock().expect("ack writer");
                for (id, position) in ids.iter().zip(&appended.positions) {
                    let _ = writeln!(out, "ack {id} {position}");
                }
                let _ = out.flush();
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task")?;
    }
    Ok(plan.events)
}
