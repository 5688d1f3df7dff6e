//! Scenarios along the referral pathway, each folded from an empty log.

use followfund_contracts::events::{CancelledBy, ReferralReason};

use super::*;
use crate::ReadModels;
use crate::fixtures::*;

const PROVIDER: &str = "PROV1";

#[test]
fn a_completed_prescription_counts_attendances_not_retracted() {
    let (referral, prescription) = (id(1), id(2));
    let (first, second, third) = (id(11), id(12), id(13));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(accepted(referral));
    history.push(assessed(referral));
    history.push(plan_agreed(
        referral,
        id(3),
        vec![ReferralReason::Loneliness],
    ));
    let issued_at = history.push(issued(prescription, referral, PROVIDER));
    history.push(prescription_accepted(prescription));
    history.push(attended(prescription, first));
    history.push(attended(prescription, second));
    history.push(attended(prescription, third));
    let retracted_at = history.push(retracted(prescription, second));
    let completed_at = history.push(completed(prescription));
    let models = history.fold();
    let journeys = &models.journeys;

    let journey = journeys.journey(referral).unwrap();
    assert_eq!(journey.status, ReferralStatus::Accepted);
    assert_eq!(journey.received_at, start() + chrono::Duration::hours(1));
    assert_eq!(
        journey.assessed_at,
        Some(start() + chrono::Duration::hours(3))
    );
    assert_eq!(journey.plan.as_ref().unwrap().plan_id, id(3));
    let listed: Vec<Uuid> = (journeys.prescriptions_of(journey))
        .map(|p| p.prescription_id)
        .collect();
    assert_eq!(listed, [prescription]);
    let positions: Vec<u64> = journey.steps.iter().collect();
    assert_eq!(positions, (1..=completed_at).collect::<Vec<_>>());
    let retraction = &history.facts()[retracted_at as usize - 1].event;
    assert_eq!(retraction.type_name(), "session.retracted");
    assert_eq!(Journeys::step_prescription(retraction), Some(prescription));

    assert_eq!(journeys.referral_of(prescription), Some(referral));
    assert_eq!(journeys.referral_of(id(99)), None);
    let prescription = journeys.prescription(prescription).unwrap();
    assert_eq!(journeys.journey_of(prescription).referral_id, referral);
    assert_eq!(journeys.agreement_id(prescription), Some(id(700)));
    assert_eq!(prescription.status, PrescriptionStatus::Completed);
    assert_eq!(prescription.issued_position, issued_at);
    assert_eq!(prescription.sessions().len(), 3);
    assert_eq!(prescription.attended_count(), 2);
    let withdrawn = prescription.session(second).unwrap();
    assert_eq!(withdrawn.state, SessionState::Retracted);
    assert_eq!(
        prescription.sessions()[1].session_id,
        second,
        "a retraction leaves the session where it was first recorded"
    );

    assert_eq!(journeys.referrals_of(&ods(ACTOR)).count(), 1);
    assert_eq!(
        journeys.prescriptions_of_provider(&ods(PROVIDER)).count(),
        1
    );
    assert_eq!(journeys.prescriptions_of_referral(referral).count(), 1);
    assert_eq!(journeys.open_prescriptions_of_provider(&ods(PROVIDER)), 0);
    assert_eq!(journeys.orphans(), 0);
}

#[test]
fn a_declined_referral_is_closed_to_further_work() {
    let referral = id(1);
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(declined(referral));
    let models = history.fold();

    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(journey.status, ReferralStatus::Declined);
    assert!(!journey.status.is_open());
    assert!(journey.prescriptions.is_empty());
    assert_eq!(journey.steps.len(), 2);
    assert_eq!(journey.steps.last(), Some(2));
    assert_eq!(
        models.journeys.referrals_of(&ods(ACTOR)).count(),
        1,
        "a declined referral stays in its service's list"
    );
}

#[test]
fn events_for_unknown_referrals_and_prescriptions_are_counted_as_orphans() {
    let (referral, prescription) = (id(1), id(2));
    let mut history = History::new();
    history.push(accepted(referral));
    history.push(issued(prescription, referral, PROVIDER));
    history.push(attended(prescription, id(11)));
    history.push(completed(prescription));
    history.push(received(id(5), ACTOR));
    history.push(closed(id(6)));
    let models = history.fold();

    assert_eq!(models.journeys.orphans(), 5);
    assert!(models.journeys.journey(referral).is_none());
    assert!(models.journeys.prescription(prescription).is_none());
    assert_eq!(
        models
            .journeys
            .prescriptions_of_provider(&ods(PROVIDER))
            .count(),
        0
    );
    assert_eq!(models.journeys.journey(id(5)).unwrap().steps.len(), 1);
}

#[test]
fn a_second_attendance_for_a_session_keeps_the_first() {
    let (referral, prescription, session) = (id(1), id(2), id(11));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(issued(prescription, referral, PROVIDER));
    history.push(attended(prescription, session));
    history.push(attended(prescription, session));
    history.push(missed(prescription, session, false));
    let models = history.fold();

    let prescription = models.journeys.prescription(prescription).unwrap();
    let record = &prescription.session(session).unwrap();
    assert_eq!(record.state, SessionState::Attended);
    assert_eq!(prescription.attended_count(), 1);
    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(
        journey.steps.len(),
        5,
        "every event stays visible in the journey"
    );
}

#[test]
fn a_retracted_session_may_be_recorded_again_and_only_attendance_is_retracted() {
    let (referral, prescription) = (id(1), id(2));
    let (corrected, missed_session, cancelled_session) = (id(11), id(12), id(13));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(issued(prescription, referral, PROVIDER));
    history.push(attended(prescription, corrected));
    history.push(retracted(prescription, corrected));
    history.push(missed(prescription, corrected, true));
    history.push(missed(prescription, missed_session, false));
    history.push(retracted(prescription, missed_session));
    history.push(cancelled(prescription, cancelled_session));
    history.push(retracted(prescription, id(99)));
    let models = history.fold();

    let prescription = models.journeys.prescription(prescription).unwrap();
    let again = &prescription.session(corrected).unwrap();
    assert_eq!(again.state, SessionState::Missed { notice_given: true });
    assert_eq!(
        prescription.session(missed_session).unwrap().state,
        SessionState::Missed {
            notice_given: false
        }
    );
    assert_eq!(
        prescription.session(cancelled_session).unwrap().state,
        SessionState::Cancelled {
            by: CancelledBy::Provider
        }
    );
    assert_eq!(
        prescription.sessions().len(),
        3,
        "retracting an unknown session adds none"
    );
    assert_eq!(prescription.attended_count(), 0);
    assert_eq!(models.journeys.orphans(), 0);
}

#[test]
fn a_redirected_referral_moves_to_the_receiving_service() {
    let referral = id(1);
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(redirected(referral, "ANCHOR2"));
    let models = history.fold();

    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(journey.status, ReferralStatus::Redirected);
    assert!(journey.status.is_open());
    let journeys = &models.journeys;
    assert_eq!(journeys.link_worker_organisation(journey), &ods("ANCHOR2"));
    let from: Vec<&OdsCode> = journeys.redirected_from(journey).collect();
    assert_eq!(from, [&ods(ACTOR)]);
    assert_eq!(models.journeys.referrals_of(&ods(ACTOR)).count(), 0);
    assert_eq!(models.journeys.referrals_of(&ods("ANCHOR2")).count(), 1);

    history.push(accepted(referral));
    let models = history.fold();
    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(
        journey.status,
        ReferralStatus::Accepted,
        "the new service takes it on"
    );

    history.push(redirected(referral, "ANCHOR3"));
    history.push(redirected(referral, "ANCHOR3"));
    let models = history.fold();
    let journey = models.journeys.journey(referral).unwrap();
    let from: Vec<&OdsCode> = models.journeys.redirected_from(journey).collect();
    assert_eq!(
        from,
        [&ods(ACTOR), &ods("ANCHOR2")],
        "oldest first, and a redirection to the holder moves nothing"
    );
}

#[test]
fn a_referral_referred_back_stays_open_until_closed() {
    let (referral, prescription) = (id(1), id(2));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(accepted(referral));
    history.push(issued(prescription, referral, PROVIDER));
    history.push(referred_back(referral));
    let models = history.fold();
    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(journey.status, ReferralStatus::ReferredBack);
    assert!(journey.status.is_open());
    let journeys = &models.journeys;
    assert_eq!(journeys.referred_back_to(journey), Some(&ods("B82005")));
    assert_eq!(journeys.referrer(journey), Some(&ods("B82005")));
    assert_eq!(journeys.redirected_from(journey).count(), 0);

    history.push(attended(prescription, id(11)));
    history.push(closed(referral));
    let models = history.fold();
    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(journey.status, ReferralStatus::Closed);
    assert!(!journey.status.is_open());
    let prescription = models.journeys.prescription(prescription).unwrap();
    assert_eq!(prescription.attended_count(), 1, "the activity carried on");
}

#[test]
fn an_amended_plan_replaces_the_needs_in_full() {
    let (referral, plan) = (id(1), id(3));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(plan_agreed(
        referral,
        plan,
        vec![ReferralReason::Loneliness],
    ));
    let amended_at = history.push(plan_amended(
        referral,
        plan,
        vec![ReferralReason::Financial, ReferralReason::Housing],
    ));
    let models = history.fold();

    let plan = models
        .journeys
        .journey(referral)
        .unwrap()
        .plan
        .clone()
        .unwrap();
    assert_eq!(
        *plan.needs,
        [ReferralReason::Financial, ReferralReason::Housing]
    );
    assert_eq!(plan.position, amended_at);
}

#[test]
fn a_second_receipt_or_issue_keeps_the_first_details() {
    let (referral, prescription) = (id(1), id(2));
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    history.push(received(referral, "ANCHOR2"));
    history.push(issued(prescription, referral, PROVIDER));
    history.push(issued(prescription, referral, "PROV2"));
    let models = history.fold();

    let journey = models.journeys.journey(referral).unwrap();
    assert_eq!(
        models.journeys.link_worker_organisation(journey),
        &ods(ACTOR)
    );
    assert_eq!(journey.steps.len(), 4);
    let listed: Vec<Uuid> = (models.journeys.prescriptions_of(journey))
        .map(|p| p.prescription_id)
        .collect();
    assert_eq!(listed, [prescription]);
    let kept = models.journeys.prescription(prescription).unwrap();
    assert_eq!(models.journeys.provider(kept), &ods(PROVIDER));
    assert_eq!(models.journeys.referrals_of(&ods("ANCHOR2")).count(), 0);
    assert_eq!(models.journeys.orphans(), 0);
}

#[test]
fn open_prescriptions_are_those_issued_or_accepted() {
    let referral = id(1);
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    for n in 0..4 {
        history.push(issued(id(20 + n), referral, PROVIDER));
    }
    history.push(prescription_accepted(id(21)));
    history.push(prescription_declined(id(22)));
    history.push(completed(id(23)));
    let models = history.fold();

    assert_eq!(
        models
            .journeys
            .open_prescriptions_of_provider(&ods(PROVIDER)),
        2
    );
    let issued_order: Vec<Uuid> = models
        .journeys
        .prescriptions_of_referral(referral)
        .map(|prescription| prescription.prescription_id)
        .collect();
    assert_eq!(issued_order, [id(20), id(21), id(22), id(23)]);
    assert_eq!(models.journeys.prescriptions_of_referral(id(9)).count(), 0);
}

#[test]
fn a_snapshot_reads_a_journeys_steps_back_as_they_were() {
    let referral = id(1);
    let mut history = History::new();
    history.push(received(referral, ACTOR));
    for _ in 0..300 {
        history.push(received(id(7), ACTOR));
    }
    history.push(accepted(referral));
    let models = history.fold();

    let text = serde_json::to_string(&models).unwrap();
    let loaded: ReadModels = serde_json::from_str(&text).unwrap();
    assert_eq!(loaded, models);
    let steps: Vec<u64> = loaded
        .journeys
        .journey(referral)
        .unwrap()
        .steps
        .iter()
        .collect();
    assert_eq!(steps, [1, 302], "a gap of 301 positions reads back whole");
}

/// Two referrals, the first with a prescription, folded and found consistent, then changed as
/// a snapshot might be and checked again: the message it is refused with, if it is.
fn refusal_after(change: Change) -> Option<String> {
    refusal_by(Journeys::assert_consistent, change)
}

/// As [`refusal_after`], for any of the journeys' checks.
fn refusal_by(check: fn(&Journeys), change: Change) -> Option<String> {
    let mut history = History::new();
    history.push(received(id(1), ACTOR));
    history.push(received(id(2), ACTOR));
    history.push(issued(id(3), id(1), PROVIDER));
    let mut journeys = history.fold().journeys;
    check(&journeys);
    change(&mut journeys);
    let refused = std::panic::catch_unwind(|| check(&journeys)).err()?;
    let text = refused.downcast_ref::<&str>().map(|text| text.to_string());
    text.or_else(|| refused.downcast_ref::<String>().cloned())
}

/// A number past those numbered.
fn past_the_numbered() -> crate::numbered::Number {
    serde_json::from_str("99").unwrap()
}

/// The second referral's journey, which has no prescription.
fn second_journey(journeys: &mut Journeys) -> &mut Journey {
    journeys.journeys.get_mut(&id(2)).unwrap()
}

/// The prescription, on the first referral.
fn the_prescription(journeys: &mut Journeys) -> &mut Prescription {
    journeys.prescriptions.get_mut(&id(3)).unwrap()
}

/// A change to folded journeys, as a snapshot might hold it.
type Change = fn(&mut Journeys);

#[test]
fn a_snapshot_whose_records_disagree_is_refused_saying_how() {
    let cases: [(Change, &str); 7] = [
        (
            |journeys| {
                let second = journeys.journeys.place(&id(2)).unwrap();
                the_prescription(journeys).journey_place = second;
            },
            "a prescription names the journey that lists it",
        ),
        (
            |journeys| second_journey(journeys).prescriptions.push(0),
            "prescriptions listed once",
        ),
        (
            |journeys| second_journey(journeys).prescriptions.push(1),
            "journeys list known prescriptions",
        ),
        (
            |journeys| {
                let first = journeys.journeys.place(&id(1)).unwrap();
                journeys.journeys.at_mut(first).prescriptions.clear();
            },
            "prescriptions listed",
        ),
        (
            |journeys| second_journey(journeys).referred_back_to = Some(past_the_numbered()),
            "journeys name numbered organisations",
        ),
        (
            |journeys| the_prescription(journeys).provider = past_the_numbered(),
            "prescriptions name numbered providers",
        ),
        (
            |journeys| the_prescription(journeys).agreement = Some(past_the_numbered()),
            "prescriptions name numbered agreements",
        ),
    ];
    assert_eq!(refusal_after(|_| {}), None);
    for (change, reason) in cases {
        let refusal = refusal_after(change).unwrap_or_default();
        assert!(refusal.contains(reason), "{refusal:?} lacks {reason:?}");
    }
}

#[test]
fn a_snapshot_rebuilds_the_indexes_the_fold_kept() {
    // Referral 9 is received before referral 7, so the records' order is not the ids' order,
    // and referral 5 moves to another organisation, leaving its first behind.
    let mut history = History::new();
    history.push(received(id(9), ACTOR));
    history.push(received(id(5), ACTOR));
    history.push(received(id(7), ACTOR));
    history.push(redirected(id(5), "ANCHOR2"));
    history.push(issued(id(30), id(9), PROVIDER));
    history.push(issued(id(20), id(7), PROVIDER));
    let journeys = history.fold().journeys;

    let text = serde_json::to_string(&journeys).unwrap();
    assert!(!text.contains("by_provider"), "the indexes are not stored");
    let loaded: Journeys = serde_json::from_str(&text).unwrap();
    assert_eq!(loaded, journeys);
    let referrals = |code: &str| -> Vec<Uuid> {
        let held = loaded.referrals_of(&ods(code));
        held.map(|journey| journey.referral_id).collect()
    };
    assert_eq!(referrals(ACTOR), [id(7), id(9)]);
    assert_eq!(referrals("ANCHOR2"), [id(5)]);
    let issued_to_provider: Vec<Uuid> = (loaded.prescriptions_of_provider(&ods(PROVIDER)))
        .map(|prescription| prescription.prescription_id)
        .collect();
    assert_eq!(issued_to_provider, [id(20), id(30)]);
}

#[test]
fn folded_indexes_that_disagree_with_the_records_are_found() {
    let indexed_after = |change: Change| refusal_by(Journeys::assert_indexed, change);
    assert_eq!(indexed_after(|_| {}), None);
    let cases: [(Change, &str); 3] = [
        (
            |journeys| unindex(&mut journeys.referrals_by_organisation, &ods(ACTOR), id(2)),
            "referrals indexed once",
        ),
        (
            |journeys| index_prescription(journeys, "ANCHOR2", id(3)),
            "prescriptions indexed once",
        ),
        (
            |journeys| {
                unindex(
                    &mut journeys.prescriptions_by_provider,
                    &ods(PROVIDER),
                    id(3),
                )
            },
            "prescriptions indexed once",
        ),
    ];
    for (change, reason) in cases {
        let refusal = indexed_after(change).unwrap_or_default();
        assert!(refusal.contains(reason), "{refusal:?} lacks {reason:?}");
    }
}

/// Files a prescription under an organisation as well as wherever it is.
fn index_prescription(journeys: &mut Journeys, code: &str, prescription_id: Uuid) {
    let index = &mut journeys.prescriptions_by_provider;
    index.entry(ods(code)).or_default().insert(prescription_id);
}

#[test]
fn located_gives_back_each_place_it_was_made_with() {
    let places = [None, Some(0), Some(1), Some(65_536), Some(u32::MAX - 1)];
    for prescription in places {
        for session in places {
            let located = Located::new(prescription, session);
            assert_eq!(
                (located.prescription(), located.session()),
                (prescription, session)
            );
        }
    }
    assert_ne!(Located::new(Some(3), None), Located::new(None, Some(3)));
}

#[test]
#[should_panic(expected = "places stay below u32::MAX")]
fn located_refuses_the_one_place_it_cannot_hold() {
    Located::new(None, Some(u32::MAX));
}
