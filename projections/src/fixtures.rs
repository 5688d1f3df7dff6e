//! Builders for the unit tests: a history of facts with consecutive positions and fixed times,
//! and the pathway events written as short calls so that each test reads as its scenario.

use chrono::{DateTime, Duration, TimeZone, Utc};
use followfund_contracts::events::{
    AgeBand, AssessmentHeld, CancelledBy, CaseCloseReason, CaseClosed, OrganisationRegistered,
    PlanAgreed, PlanAmended, PrescriptionAccepted, PrescriptionCompleted,
    PrescriptionDeclineReason, PrescriptionDeclined, PrescriptionIssued, RedirectReason,
    ReferBackReason, ReferralAccepted, ReferralDeclineReason, ReferralDeclined, ReferralReason,
    ReferralReceived, ReferralRedirected, ReferralReferredBack, ReferralSource, RetractionReason,
    SessionAttended, SessionCancelled, SessionMissed, SessionRetracted,
};
use followfund_contracts::{Event, Nation, OdsCode, PersonId, Role};
use uuid::Uuid;

use crate::{Fact, ReadModels};

/// The organisation that records every fact in these histories.
pub const ACTOR: &str = "ANCHOR1";

/// A history under construction: each pushed event takes the next position, happens an hour
/// after the previous one and is recorded a minute after it happens.
pub struct History {
    facts: Vec<Fact>,
}

impl History {
    pub fn new() -> History {
        History { facts: Vec::new() }
    }

    /// Appends an event and returns its position.
    pub fn push(&mut self, event: Event) -> u64 {
        let position = self.facts.len() as u64 + 1;
        let occurred_at = start() + Duration::hours(position as i64);
        self.facts.push(Fact {
            position,
            occurred_at,
            event,
        });
        position
    }

    /// Appends an event that happened at 09:00 on `on`; returns its position.
    pub fn push_on(&mut self, event: Event, on: chrono::NaiveDate) -> u64 {
        let position = self.push(event);
        let fact = self.facts.last_mut().expect("just pushed");
        fact.occurred_at = on.and_hms_opt(9, 0, 0).expect("a time of day").and_utc();
        position
    }

    pub fn facts(&self) -> &[Fact] {
        &self.facts
    }

    /// Folds every fact from an empty state and checks the indexes after.
    pub fn fold(&self) -> ReadModels {
        let mut models = ReadModels::new();
        for fact in &self.facts {
            models.apply(fact);
        }
        models.assert_consistent();
        models
    }
}

/// When the first fact's hour begins.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, 1, 9, 0, 0).unwrap()
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

pub fn registered(code: &str, role: Role) -> Event {
    Event::OrganisationRegistered(OrganisationRegistered {
        organisation: ods(code),
        name: format!("{code} trading name"),
        role,
        nation: Nation::England,
        parent: None,
    })
}

pub fn received(referral_id: Uuid, link_worker_organisation: &str) -> Event {
    Event::ReferralReceived(Box::new(ReferralReceived {
        referral_id,
        person_id: PersonId(id(900)),
        source: ReferralSource::GpPractice,
        referrer: Some(ods("B82005")),
        link_worker_organisation: ods(link_worker_organisation),
        reasons: vec![ReferralReason::Loneliness],
        age_band: AgeBand::From65To74,
        conditions: Vec::new(),
    }))
}

pub fn accepted(referral_id: Uuid) -> Event {
    Event::ReferralAccepted(ReferralAccepted { referral_id })
}

pub fn declined(referral_id: Uuid) -> Event {
    Event::ReferralDeclined(ReferralDeclined {
        referral_id,
        reason: ReferralDeclineReason::PersonDeclined,
    })
}

pub fn redirected(referral_id: Uuid, to_organisation: &str) -> Event {
    Event::ReferralRedirected(ReferralRedirected {
        referral_id,
        to_organisation: ods(to_organisation),
        reason: RedirectReason::OutOfArea,
    })
}

pub fn assessed(referral_id: Uuid) -> Event {
    Event::AssessmentHeld(AssessmentHeld {
        referral_id,
        duration_minutes: 90,
    })
}

pub fn plan_agreed(referral_id: Uuid, plan_id: Uuid, needs: Vec<ReferralReason>) -> Event {
    Event::PlanAgreed(PlanAgreed {
        referral_id,
        plan_id,
        needs,
    })
}

pub fn plan_amended(referral_id: Uuid, plan_id: Uuid, needs: Vec<ReferralReason>) -> Event {
    Event::PlanAmended(PlanAmended {
        referral_id,
        plan_id,
        needs,
    })
}

pub fn referred_back(referral_id: Uuid) -> Event {
    Event::ReferralReferredBack(ReferralReferredBack {
        referral_id,
        to_organisation: ods("B82005"),
        reason: ReferBackReason::Crisis,
    })
}

pub fn closed(referral_id: Uuid) -> Event {
    Event::CaseClosed(CaseClosed {
        referral_id,
        reason: CaseCloseReason::GoalsMet,
    })
}

pub fn issued(prescription_id: Uuid, referral_id: Uuid, provider: &str) -> Event {
    Event::PrescriptionIssued(PrescriptionIssued {
        prescription_id,
        referral_id,
        provider: ods(provider),
        activity_type: followfund_contracts::events::ActivityType::Walking,
        agreement_id: Some(id(700)),
    })
}

pub fn prescription_accepted(prescription_id: Uuid) -> Event {
    Event::PrescriptionAccepted(PrescriptionAccepted { prescription_id })
}

pub fn prescription_declined(prescription_id: Uuid) -> Event {
    Event::PrescriptionDeclined(PrescriptionDeclined {
        prescription_id,
        reason: PrescriptionDeclineReason::AtCapacity,
    })
}

pub fn completed(prescription_id: Uuid) -> Event {
    Event::PrescriptionCompleted(PrescriptionCompleted { prescription_id })
}

pub fn attended(prescription_id: Uuid, session_id: Uuid) -> Event {
    Event::SessionAttended(SessionAttended {
        prescription_id,
        session_id,
    })
}

pub fn missed(prescription_id: Uuid, session_id: Uuid, notice_given: bool) -> Event {
    Event::SessionMissed(SessionMissed {
        prescription_id,
        session_id,
        notice_given,
    })
}

pub fn cancelled(prescription_id: Uuid, session_id: Uuid) -> Event {
    Event::SessionCancelled(SessionCancelled {
        prescription_id,
        session_id,
        cancelled_by: CancelledBy::Provider,
    })
}

pub fn retracted(prescription_id: Uuid, session_id: Uuid) -> Event {
    Event::SessionRetracted(SessionRetracted {
        prescription_id,
        session_id,
        reason: RetractionReason::RecordedInError,
    })
}
