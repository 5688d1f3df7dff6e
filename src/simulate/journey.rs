//! One person's journey, step by step: received, accepted or declined, assessed with a baseline
//! wellbeing measure and a plan, one or two prescriptions of about twelve weekly sessions each,
//! a follow-up measure six months after the baseline, and the case closed. Prescriptions go to
//! the first of the anchor's providers the command layer accepts (capacity, budget, agreement),
//! or unfunded to a provider when none has room.

use chrono::{DateTime, Duration, Months, Utc};
use followfund_contracts::{Event, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Check, Job, Pending, Simulation, principal};

/// Where a journey stands, and what its next step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Receive,
    Triage,
    Assess,
    Prescribe,
    ProviderAccept,
    Session(u32),
    Finish,
    FollowUp,
    Close,
    Done,
}

/// A journey in progress.
pub(crate) struct JourneyState {
    stage: Stage,
    referral_id: Uuid,
    anchor: usize,
    baseline_at: Option<DateTime<Utc>>,
    prescriptions_wanted: u32,
    prescriptions_issued: u32,
    /// The current prescription: its id, provider code and whether it is funded.
    current: Option<(Uuid, String)>,
    sessions_planned: u32,
    attended: u32,
    /// A wellbeing gain this person will show at follow-up, in WEMWBS points.
    gain: u8,
}

impl JourneyState {
    pub(crate) fn new() -> JourneyState {
        JourneyState {
            stage: Stage::Receive,
            referral_id: Uuid::nil(),
            anchor: 0,
            baseline_at: None,
            prescriptions_wanted: 1,
            prescriptions_issued: 0,
            current: None,
            sessions_planned: 0,
            attended: 0,
            gain: 0,
        }
    }
}

/// Takes the journey's next step at `at`; schedules the one after.
pub(crate) fn step(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Vec<Pending> {
    let stage = sim.journeys[index as usize].stage;
    let (pending, next) = match stage {
        Stage::Receive => receive(sim, index, at),
        Stage::Triage => triage(sim, index, at),
        Stage::Assess => assess(sim, index, at),
        Stage::Prescribe => prescribe(sim, index, at),
        Stage::ProviderAccept => provider_accept(sim, index, at),
        Stage::Session(n) => session(sim, index, n, at),
        Stage::Finish => finish(sim, index, at),
        Stage::FollowUp => follow_up(sim, index, at),
        Stage::Close => (
            vec![holder(
                sim,
                index,
                "case.closed",
                json!({"referral_id": referral(sim, index), "reason": "goals_met"}),
                at,
            )],
            None,
        ),
        Stage::Done => (Vec::new(), None),
    };
    match next {
        Some((stage, when)) => {
            sim.journeys[index as usize].stage = stage;
            sim.at(when, Job::Journey(index));
        }
        None => sim.journeys[index as usize].stage = Stage::Done,
    }
    pending
}

type Step = (Vec<Pending>, Option<(Stage, DateTime<Utc>)>);

fn referral(sim: &Simulation, index: u32) -> Uuid {
    sim.journeys[index as usize].referral_id
}

fn event(event_type: &str, data: Value) -> Event {
    Event::decode(event_type, 1, data)
        .unwrap_or_else(|error| panic!("the generator built an invalid {event_type}: {error}"))
}

/// An event the referral's link worker service records.
fn holder(
    sim: &Simulation,
    index: u32,
    event_type: &str,
    data: Value,
    at: DateTime<Utc>,
) -> Pending {
    let anchor = &sim.world.anchors[sim.journeys[index as usize].anchor];
    Pending::new(
        Check::Pathway,
        event(event_type, data),
        principal(anchor.as_str(), Role::Anchor),
        at,
    )
}

/// An event the prescription's provider records.
fn provider(
    sim: &Simulation,
    index: u32,
    event_type: &str,
    data: Value,
    at: DateTime<Utc>,
) -> Pending {
    let (_, code) = sim.journeys[index as usize]
        .current
        .clone()
        .expect("a current prescription");
    Pending::new(
        Check::Pathway,
        event(event_type, data),
        principal(&code, Role::Provider),
        at,
    )
}

fn receive(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let referral_id = sim.id();
    let person_id = sim.id();
    let anchor = sim.random.below(sim.world.anchors.len() as u64) as usize;
    let wanted = if sim.random.chance(50) { 2 } else { 1 };
    let gain = sim.random.below(8) as u8;
    {
        let journey = &mut sim.journeys[index as usize];
        journey.referral_id = referral_id;
        journey.anchor = anchor;
        journey.prescriptions_wanted = wanted;
        journey.gain = gain;
    }
    let r = &mut sim.random;
    let data = json!({
        "referral_id": referral_id, "person_id": person_id,
        "source": r.pick(&["gp_practice", "self_referral", "housing", "pharmacist"]),
        "referrer": null, "link_worker_organisation": sim.world.anchors[anchor].as_str(),
        "reasons": [r.pick(&["loneliness", "mental_wellbeing", "financial", "physical_activity"])],
        "age_band": r.pick(&["18-24", "25-39", "40-54", "55-64", "65-74", "75+"]),
        "conditions": if r.chance(40) { json!(["diabetes", "copd"]) } else if r.chance(30) { json!(["depression"]) } else { json!([]) },
    });
    (
        vec![holder(sim, index, "referral.received", data, at)],
        Some((Stage::Triage, at + Duration::days(1))),
    )
}

fn triage(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let referral_id = referral(sim, index);
    if sim.random.chance(10) {
        let declined = holder(
            sim,
            index,
            "referral.declined",
            json!({"referral_id": referral_id, "reason": "unable_to_contact"}),
            at,
        );
        return (vec![declined], None);
    }
    let accepted = holder(
        sim,
        index,
        "referral.accepted",
        json!({"referral_id": referral_id}),
        at,
    );
    (
        vec![accepted],
        Some((Stage::Assess, at + Duration::days(4))),
    )
}

fn assess(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let referral_id = referral(sim, index);
    let plan_id = sim.id();
    sim.journeys[index as usize].baseline_at = Some(at);
    let mut pending = vec![
        holder(
            sim,
            index,
            "assessment.held",
            json!({"referral_id": referral_id, "duration_minutes": 60}),
            at,
        ),
        holder(
            sim,
            index,
            "outcome.measured",
            json!({"referral_id": referral_id, "instrument": "wemwbs", "stage": "baseline", "item_scores": vec![3; 14]}),
            at,
        ),
        holder(
            sim,
            index,
            "plan.agreed",
            json!({"referral_id": referral_id, "plan_id": plan_id, "needs": ["loneliness"]}),
            at,
        ),
    ];
    pending.extend(sib_claim(sim, index, "initial_assessment", at));
    (pending, Some((Stage::Prescribe, at + Duration::days(1))))
}

/// The first of the anchor's providers, from a random start, that the command layer lets this
/// prescription go to; unfunded to that first provider when none has room.
fn prescribe(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let (referral_id, anchor) = (referral(sim, index), sim.journeys[index as usize].anchor);
    let prescription_id = sim.id();
    let providers = &sim.world.providers[anchor];
    let start = sim.random.below(providers.len() as u64) as usize;
    let caller = principal(sim.world.anchors[anchor].as_str(), Role::Anchor);
    let mut chosen = None;
    for offset in 0..providers.len().min(4) {
        let provider = &providers[(start + offset) % providers.len()];
        let issue = event(
            "prescription.issued",
            json!({
                "prescription_id": prescription_id, "referral_id": referral_id, "provider": provider.code.as_str(),
                "activity_type": provider.activity, "agreement_id": provider.agreement_id,
            }),
        );
        if crate::commands::decide(sim.models(), &caller, Utc::now(), at, issue.clone()).is_ok() {
            chosen = Some((issue, provider.code.as_str().to_string()));
            break;
        }
    }
    let (issue, code) = chosen.unwrap_or_else(|| {
        let provider = &providers[start];
        let unfunded = event("prescription.issued", json!({
            "prescription_id": prescription_id, "referral_id": referral_id, "provider": provider.code.as_str(),
            "activity_type": provider.activity, "agreement_id": null,
        }));
        (unfunded, provider.code.as_str().to_string())
    });
    let sessions = 8 + sim.random.below(9) as u32;
    let journey = &mut sim.journeys[index as usize];
    journey.current = Some((prescription_id, code));
    journey.prescriptions_issued += 1;
    journey.sessions_planned = sessions;
    journey.attended = 0;
    let pending = Pending::new(Check::Pathway, issue, caller, at);
    (
        vec![pending],
        Some((Stage::ProviderAccept, at + Duration::days(2))),
    )
}

fn current(sim: &Simulation, index: u32) -> Uuid {
    sim.journeys[index as usize]
        .current
        .as_ref()
        .expect("a current prescription")
        .0
}

fn provider_accept(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let accepted = provider(
        sim,
        index,
        "prescription.accepted",
        json!({"prescription_id": current(sim, index)}),
        at,
    );
    (
        vec![accepted],
        Some((Stage::Session(0), at + Duration::days(5))),
    )
}

fn session(sim: &mut Simulation, index: u32, n: u32, at: DateTime<Utc>) -> Step {
    let (prescription_id, session_id) = (current(sim, index), sim.id());
    let attended = sim.random.chance(85);
    let pending = if attended {
        sim.journeys[index as usize].attended += 1;
        provider(
            sim,
            index,
            "session.attended",
            json!({"prescription_id": prescription_id, "session_id": session_id}),
            at,
        )
    } else {
        let notice_given = sim.random.chance(50);
        provider(
            sim,
            index,
            "session.missed",
            json!({"prescription_id": prescription_id, "session_id": session_id, "notice_given": notice_given}),
            at,
        )
    };
    let next = if n + 1 < sim.journeys[index as usize].sessions_planned {
        (Stage::Session(n + 1), at + Duration::days(7))
    } else {
        (Stage::Finish, at + Duration::days(1))
    };
    (vec![pending], Some(next))
}

fn finish(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let prescription_id = current(sim, index);
    let journey = &sim.journeys[index as usize];
    let pending = if journey.attended >= 8 {
        provider(
            sim,
            index,
            "prescription.completed",
            json!({"prescription_id": prescription_id}),
            at,
        )
    } else {
        provider(
            sim,
            index,
            "prescription.ended",
            json!({"prescription_id": prescription_id, "reason": "did_not_attend"}),
            at,
        )
    };
    let journey = &sim.journeys[index as usize];
    if journey.prescriptions_issued < journey.prescriptions_wanted {
        return (
            vec![pending],
            Some((Stage::Prescribe, at + Duration::days(3))),
        );
    }
    let due = journey.baseline_at.expect("assessed before prescribing") + Months::new(6);
    (
        vec![pending],
        Some((Stage::FollowUp, due.max(at + Duration::days(1)))),
    )
}

fn follow_up(sim: &mut Simulation, index: u32, at: DateTime<Utc>) -> Step {
    let referral_id = referral(sim, index);
    let gain = sim.journeys[index as usize].gain;
    let mut items = [3u8; 14];
    for item in items.iter_mut().take(usize::from(gain)) {
        *item = 4;
    }
    let mut pending = vec![holder(
        sim,
        index,
        "outcome.measured",
        json!({"referral_id": referral_id, "instrument": "wemwbs", "stage": "follow_up", "item_scores": items}),
        at,
    )];
    // The rate card counts a follow-up within 30 days of six months after the baseline.
    let due = sim.journeys[index as usize].baseline_at.expect("assessed") + Months::new(6);
    if gain >= 3 && at <= due + Duration::days(30) {
        pending.extend(sib_claim(sim, index, "wemwbs_6_months", at));
    }
    (pending, Some((Stage::Close, at + Duration::days(1))))
}

/// For the outcome contract's anchor, a claim for an outcome the person has met, if eligible,
/// signed off by the verifier at once.
fn sib_claim(
    sim: &mut Simulation,
    index: u32,
    outcome_id: &str,
    at: DateTime<Utc>,
) -> Vec<Pending> {
    let (anchor, contract_id) = sim.world.sib;
    if sim.journeys[index as usize].anchor != anchor {
        return Vec::new();
    }
    let referral_id = referral(sim, index);
    let models = sim.models();
    let contract = models
        .sib
        .contract(contract_id)
        .expect("the contract is published first");
    let person = models
        .sib
        .person(referral_id)
        .expect("the referral is folded");
    if !models.sib.in_cohort(contract, person) {
        return Vec::new();
    }
    let claim_id = sim.id();
    let price = match outcome_id {
        "initial_assessment" => "120.00",
        _ => "250.00",
    };
    let month = followfund_contracts::terms::YearMonth::containing(at.date_naive());
    let claim = event(
        "sib_outcome.claimed",
        json!({
            "claim_id": claim_id, "contract_id": contract_id, "outcome_id": outcome_id,
            "referral_id": referral_id, "period": month.to_string(), "amount": price,
        }),
    );
    let verified = event(
        "sib_outcome.verified",
        json!({"claim_id": claim_id, "contract_id": contract_id}),
    );
    let anchor_code = sim.world.anchors[anchor].as_str().to_string();
    vec![
        Pending::new(Check::Sib, claim, principal(&anchor_code, Role::Anchor), at),
        Pending::new(Check::Sib, verified, principal("VER01", Role::Verifier), at),
    ]
}
