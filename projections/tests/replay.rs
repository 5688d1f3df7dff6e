//! Replay determinism over generated histories: folding a log from zero gives exactly the state
//! that folding a prefix, snapshotting it through JSON and folding the rest gives; and folding the
//! same log twice gives the same state.
//!
//! Histories are "valid-ish": most events name a referral or prescription introduced earlier,
//! picked at random so that events meet referrals in every status; about one in sixteen names one
//! the log never introduced (an orphan) or repeats a receipt or an issue; sessions come from a
//! small pool per prescription so that they are repeated, retracted and recorded again; events
//! are recorded up to three days after they happened.

use chrono::{DateTime, Duration, TimeZone, Utc};
use followfund_contracts::events::*;
use followfund_contracts::{Event, Nation, OdsCode, PersonId, Role};
use followfund_projections::{Fact, ReadModels};
use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

const FACTS_MAX: usize = 200;
const ORGANISATIONS: u8 = 4;
const SESSIONS_PER_PRESCRIPTION: u8 = 5;
/// One event in this many names what the log never introduced, or repeats an introduction.
const ORPHAN_ONE_IN: u8 = 16;
/// How late an event may be recorded after it happened: up to three days.
const RECORDED_LATE_MINUTES_MAX: u32 = 3 * 24 * 60;
/// How many kinds of event `event_of` draws from.
const EVENT_KINDS: u8 = 22;
/// Ids below these are introduced by the history; ids from them on never are.
const REFERRAL_ORPHANS_FROM: u128 = 50_000;
const PRESCRIPTION_ORPHANS_FROM: u128 = 60_000;

/// The random draws one generated event is built from.
#[derive(Clone, Debug)]
struct Draw {
    kind: u8,
    first: u8,
    second: u8,
    flag: bool,
    orphan: bool,
    recorded_late_minutes: u32,
}

fn draw() -> impl Strategy<Value = Draw> {
    (
        0..EVENT_KINDS,
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        (0..ORPHAN_ONE_IN).prop_map(|n| n == 0),
        0..=RECORDED_LATE_MINUTES_MAX,
    )
        .prop_map(
            |(kind, first, second, flag, orphan, recorded_late_minutes)| Draw {
                kind,
                first,
                second,
                flag,
                orphan,
                recorded_late_minutes,
            },
        )
}

fn history() -> impl Strategy<Value = Vec<Fact>> {
    prop::collection::vec(draw(), 0..=FACTS_MAX).prop_map(|draws| {
        let mut introduced = Introduced::default();
        draws
            .iter()
            .enumerate()
            .map(|(index, draw)| {
                let event = event_of(draw, &introduced);
                introduced.note(&event);
                fact(index as u64 + 1, draw, event)
            })
            .collect()
    })
}

/// The referrals received and prescriptions issued so far in a history being generated.
#[derive(Default)]
struct Introduced {
    referrals: Vec<Uuid>,
    prescriptions: Vec<Uuid>,
}

impl Introduced {
    fn note(&mut self, event: &Event) {
        match event {
            Event::ReferralReceived(e) if !self.referrals.contains(&e.referral_id) => {
                self.referrals.push(e.referral_id)
            }
            Event::PrescriptionIssued(e)
                if self.referrals.contains(&e.referral_id)
                    && !self.prescriptions.contains(&e.prescription_id) =>
            {
                self.prescriptions.push(e.prescription_id)
            }
            _ => {}
        }
    }

    /// A referral received earlier, or now and then one never received.
    fn referral(&self, draw: &Draw) -> Uuid {
        match pick(&self.referrals, draw.first) {
            Some(known) if !draw.orphan => known,
            _ => Uuid::from_u128(REFERRAL_ORPHANS_FROM + u128::from(draw.first % 4)),
        }
    }

    /// A prescription issued earlier, or now and then one never issued.
    fn prescription(&self, draw: &Draw) -> Uuid {
        match pick(&self.prescriptions, draw.first) {
            Some(known) if !draw.orphan => known,
            _ => Uuid::from_u128(PRESCRIPTION_ORPHANS_FROM + u128::from(draw.first % 4)),
        }
    }

    /// A new referral id, or now and then one already received.
    fn referral_to_receive(&self, draw: &Draw) -> Uuid {
        match pick(&self.referrals, draw.first) {
            Some(known) if draw.orphan => known,
            _ => Uuid::from_u128(1_000 + self.referrals.len() as u128),
        }
    }

    /// A new prescription id, or now and then one already issued.
    fn prescription_to_issue(&self, draw: &Draw) -> Uuid {
        match pick(&self.prescriptions, draw.first) {
            Some(known) if draw.orphan => known,
            _ => Uuid::from_u128(2_000 + self.prescriptions.len() as u128),
        }
    }
}

/// One of the known ids, chosen by a draw; none while nothing is known.
fn pick(known: &[Uuid], choice: u8) -> Option<Uuid> {
    (!known.is_empty()).then(|| known[usize::from(choice) % known.len()])
}

fn fact(position: u64, draw: &Draw, event: Event) -> Fact {
    let recorded_at = start() + Duration::minutes(position as i64 * 10);
    Fact {
        position,
        occurred_at: recorded_at - Duration::minutes(i64::from(draw.recorded_late_minutes)),
        event,
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 4, 1, 0, 0, 0).unwrap()
}

fn organisation(n: u8) -> OdsCode {
    OdsCode::parse(&format!("ORG{}", n % ORGANISATIONS)).unwrap()
}

fn session(n: u8) -> Uuid {
    Uuid::from_u128(3_000 + u128::from(n % SESSIONS_PER_PRESCRIPTION))
}

/// The event a draw stands for. Receipts, issues and attendances have two kinds each, so they
/// are drawn twice as often as the rest, as in a real log.
fn event_of(draw: &Draw, introduced: &Introduced) -> Event {
    let (a, b, flag) = (draw.first, draw.second, draw.flag);
    let referral = || introduced.referral(draw);
    let prescription = || introduced.prescription(draw);
    match draw.kind {
        0 => Event::OrganisationRegistered(OrganisationRegistered {
            organisation: organisation(a),
            name: format!("Organisation {}", b % 3),
            role: Role::ALL[usize::from(b) % Role::ALL.len()],
            nation: if flag { Nation::England } else { Nation::Wales },
            parent: flag.then(|| organisation(b)),
        }),
        1 | 2 => Event::ReferralReceived(Box::new(ReferralReceived {
            referral_id: introduced.referral_to_receive(draw),
            person_id: PersonId(Uuid::from_u128(9_000 + u128::from(a))),
            source: if flag {
                ReferralSource::GpPractice
            } else {
                ReferralSource::SelfReferral
            },
            referrer: flag.then(|| OdsCode::parse("B82005").unwrap()),
            link_worker_organisation: organisation(b),
            reasons: vec![ReferralReason::Loneliness],
            age_band: AgeBand::From40To54,
            conditions: vec![LongTermCondition::Diabetes],
        })),
        3 => Event::ReferralAccepted(ReferralAccepted {
            referral_id: referral(),
        }),
        4 => Event::ReferralDeclined(ReferralDeclined {
            referral_id: referral(),
            reason: ReferralDeclineReason::NotEligible,
        }),
        5 => Event::ReferralRedirected(ReferralRedirected {
            referral_id: referral(),
            to_organisation: organisation(b),
            reason: RedirectReason::OutOfArea,
        }),
        6 => Event::AssessmentHeld(AssessmentHeld {
            referral_id: referral(),
            duration_minutes: 60,
        }),
        7 => Event::PlanAgreed(PlanAgreed {
            referral_id: referral(),
            plan_id: Uuid::from_u128(u128::from(b % 2)),
            needs: vec![ReferralReason::Financial],
        }),
        8 => Event::PlanAmended(PlanAmended {
            referral_id: referral(),
            plan_id: Uuid::from_u128(u128::from(b % 2)),
            needs: vec![ReferralReason::Housing, ReferralReason::Employment],
        }),
        9 => Event::OutcomeMeasured(OutcomeMeasured {
            referral_id: referral(),
            instrument: Instrument::Gad7,
            stage: if flag {
                MeasureStage::Baseline
            } else {
                MeasureStage::FollowUp
            },
            item_scores: vec![b % 4; 7],
        }),
        10 => Event::ReferralReferredBack(ReferralReferredBack {
            referral_id: referral(),
            to_organisation: OdsCode::parse("B82005").unwrap(),
            reason: ReferBackReason::Crisis,
        }),
        11 => Event::CaseClosed(CaseClosed {
            referral_id: referral(),
            reason: CaseCloseReason::GoalsMet,
        }),
        12 | 13 => Event::PrescriptionIssued(PrescriptionIssued {
            prescription_id: introduced.prescription_to_issue(draw),
            referral_id: referral(),
            provider: organisation(b),
            activity_type: ActivityType::Gardening,
            agreement_id: flag.then(|| Uuid::from_u128(7)),
        }),
        14 => Event::PrescriptionAccepted(PrescriptionAccepted {
            prescription_id: prescription(),
        }),
        15 => Event::PrescriptionDeclined(PrescriptionDeclined {
            prescription_id: prescription(),
            reason: PrescriptionDeclineReason::NoResponse,
        }),
        16 => Event::PrescriptionCompleted(PrescriptionCompleted {
            prescription_id: prescription(),
        }),
        17 => Event::PrescriptionEnded(PrescriptionEnded {
            prescription_id: prescription(),
            reason: PrescriptionEndReason::DidNotAttend,
        }),
        18 | 19 => Event::SessionAttended(SessionAttended {
            prescription_id: prescription(),
            session_id: session(b),
        }),
        20 => {
            if flag {
                Event::SessionMissed(SessionMissed {
                    prescription_id: prescription(),
                    session_id: session(b),
                    notice_given: b % 2 == 0,
                })
            } else {
                Event::SessionCancelled(SessionCancelled {
                    prescription_id: prescription(),
                    session_id: session(b),
                    cancelled_by: if b % 2 == 0 {
                        CancelledBy::Person
                    } else {
                        CancelledBy::Provider
                    },
                })
            }
        }
        _ => Event::SessionRetracted(SessionRetracted {
            prescription_id: prescription(),
            session_id: session(b),
            reason: RetractionReason::RecordedInError,
        }),
    }
}

fn fold(models: &mut ReadModels, facts: &[Fact]) {
    for fact in facts {
        models.apply(fact);
    }
}

fn snapshot(models: &ReadModels) -> ReadModels {
    let text = serde_json::to_string(models).expect("read models serialise");
    serde_json::from_str(&text).expect("a snapshot loads")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn folding_from_a_snapshot_equals_folding_from_zero(facts in history(), split in any::<Index>()) {
        let split = split.index(facts.len() + 1);
        let mut from_zero = ReadModels::new();
        fold(&mut from_zero, &facts);

        let mut prefix = ReadModels::new();
        fold(&mut prefix, &facts[..split]);
        let mut resumed = snapshot(&prefix);
        resumed.assert_consistent();
        prop_assert_eq!(&resumed, &prefix);
        fold(&mut resumed, &facts[split..]);

        prop_assert_eq!(resumed.position(), facts.len() as u64);
        prop_assert_eq!(&resumed, &from_zero);
    }

    #[test]
    fn folding_a_page_on_two_threads_equals_folding_fact_by_fact(facts in history(), page in 1usize..700) {
        // The history again and again, numbered on, so that pages are long enough to be folded
        // on two threads.
        let mut long = Vec::new();
        while long.len() < 1_000 && !facts.is_empty() {
            for fact in &facts {
                long.push(Fact { position: long.len() as u64 + 1, ..fact.clone() });
            }
        }
        let mut one_by_one = ReadModels::new();
        fold(&mut one_by_one, &long);
        let mut paged = ReadModels::new();
        for chunk in long.chunks(page) {
            paged.apply_all(chunk);
        }
        prop_assert_eq!(paged.position(), long.len() as u64);
        prop_assert_eq!(&paged, &one_by_one);

        let mut streamed = ReadModels::new();
        streamed.apply_pages(long.chunks(page).map(<[Fact]>::to_vec));
        prop_assert_eq!(&streamed, &one_by_one);
    }

    #[test]
    fn folding_is_deterministic_and_accounts_for_every_fact(facts in history()) {
        let mut first = ReadModels::new();
        fold(&mut first, &facts);
        let mut second = ReadModels::new();
        fold(&mut second, &facts);
        prop_assert_eq!(&first, &second);
        first.assert_consistent();

        // Each fact is a registration, an orphan, or exactly one step of one journey.
        let registrations = facts
            .iter()
            .filter(|fact| matches!(fact.event, Event::OrganisationRegistered(_)))
            .count() as u64;
        let steps: u64 = first.journeys.journeys().map(|journey| journey.steps.len() as u64).sum();
        prop_assert_eq!(registrations + first.journeys.orphans() + steps, facts.len() as u64);
        for prescription in first.journeys.prescriptions() {
            prop_assert!(prescription.attended_count() <= prescription.sessions().len());
        }
    }
}
