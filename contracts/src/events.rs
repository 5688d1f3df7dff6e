//! The event catalogue: every fact the ledger records, as a typed, versioned payload, and the one
//! gate (`Event::decode`) through which stored or submitted JSON becomes such a fact.

mod arrs;
mod compact;
mod funding;
mod markdown;
mod organisations;
mod outcomes;
mod plans;
mod prescriptions;
mod referrals;
mod sessions;
mod sib;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::identifiers::{PAYLOAD_PATH_ROOT, find_nhs_number};

pub use arrs::*;
pub use compact::{Compact, Form};
pub use funding::*;
pub use markdown::catalogue_markdown;
pub use organisations::*;
pub use outcomes::*;
pub use plans::*;
pub use prescriptions::*;
pub use referrals::*;
pub use sessions::*;
pub use sib::*;

/// One event type as the catalogue lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    /// The stable type name stored in each event's envelope, such as `referral.received`.
    pub name: &'static str,
    /// The payload schema version the ledger writes and reads for this type.
    pub schema_version: u32,
    /// What the event records, in one line.
    pub description: &'static str,
}

/// Why a payload was refused. Messages never repeat payload text, so they are safe to log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// No event type has this name.
    #[error("unknown event type `{type_name}`; see contracts/EVENTS.md for the valid types")]
    UnknownType {
        /// The type name given.
        type_name: String,
    },
    /// The type exists but not at this payload schema version.
    #[error(
        "`{type_name}` has no schema version {schema_version}; this ledger reads version \
         {supported}"
    )]
    UnsupportedSchemaVersion {
        /// The type name given.
        type_name: String,
        /// The schema version given.
        schema_version: u32,
        /// The version this ledger reads.
        supported: u32,
    },
    /// The payload does not fit the type's schema: a field is missing, mistyped, out of range or
    /// not part of the type.
    #[error("`{type_name}` payload is invalid at {path}: {message}")]
    InvalidData {
        /// The type name given.
        type_name: String,
        /// The JSON path of the problem, such as `data.referral_id` or `data.item_scores[3]`.
        path: String,
        /// What is wrong, such as "missing field `referral_id`".
        message: String,
    },
    /// A string in the payload contains what looks like an NHS number.
    #[error(
        "`{type_name}` payload refused: a string at {path} looks like an NHS number; the log \
         holds pseudonymous ids only, so record the person's `person_id` instead"
    )]
    PersonalData {
        /// The type name given.
        type_name: String,
        /// The JSON path of the string, such as `data.note`.
        path: String,
    },
}

/// A problem found in a payload of a known type, before the type name is attached.
struct Invalid {
    path: String,
    message: String,
}

/// A payload's type in [`Event`]: itself, or a box for the payloads larger than the common ones
/// (an agreement's tariff, a SIB contract's terms, a referral's details), so that an event,
/// which a replay moves from its page to its fold, is not the size of the largest. A referral
/// is one event in twenty-seven of a national year; its box costs less than 40 bytes more in
/// every other event's page.
macro_rules! payload_of {
    ($variant:ident) => { $variant };
    ($variant:ident boxed) => { Box<$variant> };
}

/// Lists every event type once: the variant (named after its payload struct), the stored type
/// name, the schema version and a one-line description. Adding a type is one line here.
macro_rules! event_catalogue {
    ($( $variant:ident $($boxed:ident)? => $name:literal, v $version:literal, $description:literal; )+) => {
        /// A fact the ledger records. Each variant wraps the payload struct of the same name; the
        /// envelope around it (event id, `occurred_at`, `recorded_at`, who recorded it) is kept
        /// by the store.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Event {
            $(
                #[doc = $description]
                $variant(payload_of!($variant $($boxed)?)),
            )+
        }

        /// Each type's place in the catalogue, in the order listed.
        #[derive(Clone, Copy)]
        enum Place {
            $( $variant, )+
        }

        /// Reads a MessagePack payload of the type at each place in the catalogue.
        type FromMessagePack = fn(&[u8]) -> Result<Event, rmp_serde::decode::Error>;
        static FROM_MESSAGE_PACK: &[FromMessagePack] = &[
            $( |bytes| rmp_serde::from_slice::<$variant>(bytes).map(|payload| Event::$variant(payload.into())), )+
        ];

        static CATALOGUE: &[EventType] = &[
            $( EventType { name: $name, schema_version: $version, description: $description }, )+
        ];

        impl Event {
            /// The stable type name stored in the envelope, such as `referral.received`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( Event::$variant(_) => $name, )+
                }
            }

            /// The type's place in [`catalogue`].
            pub fn place(&self) -> usize {
                match self {
                    $( Event::$variant(_) => Place::$variant as usize, )+
                }
            }

            /// The payload as MessagePack, structs as lists of their fields.
            fn to_message_pack(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
                match self {
                    $( Event::$variant(payload) => rmp_serde::to_vec(payload), )+
                }
            }

            /// The schema version of this payload.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $( Event::$variant(_) => $version, )+
                }
            }

            /// The canonical JSON text of the payload: fields in declaration order, no spaces.
            /// Decoding it with [`Event::decode`] gives back an equal event.
            pub fn encode(&self) -> String {
                let text = match self {
                    $( Event::$variant(payload) => serde_json::to_string(payload), )+
                };
                text.expect("payloads hold only strings, numbers, booleans and lists")
            }

            /// Decodes a payload read back from the log. It was checked in full when it was
            /// appended and the hash chain has covered it since, so only its shape is read here,
            /// straight from the stored text: replay is the hot path.
            pub fn decode_stored(
                type_name: &str,
                schema_version: u32,
                data: &str,
            ) -> Result<Event, CatalogueError> {
                let invalid = |error: serde_json::Error| CatalogueError::InvalidData {
                    type_name: type_name.to_owned(),
                    path: "data".to_owned(),
                    message: error.to_string(),
                };
                match (type_name, schema_version) {
                    $( ($name, $version) => serde_json::from_str::<$variant>(data)
                        .map(|payload| Event::$variant(payload.into()))
                        .map_err(invalid), )+
                    _ => Err(Event::decode(type_name, schema_version, Value::Null)
                        .expect_err("a type or version outside the catalogue")),
                }
            }

            /// Deserialises a payload of a type already known to be in the catalogue.
            fn deserialize_known(type_name: &str, data: Value) -> Option<Result<Event, Invalid>> {
                match type_name {
                    $( $name => Some(from_data::<$variant>(data).map(|payload| Event::$variant(payload.into()))), )+
                    _ => None,
                }
            }
        }

        /// Every payload's JSON schema and field names in declaration order, in catalogue
        /// order, for the generated reference.
        fn payload_shapes() -> Vec<markdown::PayloadShape> {
            vec![ $( markdown::PayloadShape::of::<$variant>(), )+ ]
        }
    };
}

event_catalogue! {
    OrganisationRegistered => "organisation.registered", v 1,
        "An organisation joined the ledger with a role and a nation.";
    ReferralReceived boxed => "referral.received", v 1,
        "A link worker service received a referral for a pseudonymous person.";
    ReferralAccepted => "referral.accepted", v 1,
        "The link worker service took the referral on.";
    ReferralDeclined => "referral.declined", v 1,
        "The link worker service declined the referral.";
    ReferralRedirected => "referral.redirected", v 1,
        "The referral was passed to another link worker service.";
    AssessmentHeld => "assessment.held", v 1,
        "The link worker held the initial assessment with the person.";
    PlanAgreed => "plan.agreed", v 1,
        "The person and link worker agreed a care and support plan.";
    PlanAmended => "plan.amended", v 1,
        "The care and support plan was changed.";
    PrescriptionIssued => "prescription.issued", v 1,
        "A link worker prescribed an activity run by a provider.";
    PrescriptionWaitlisted => "prescription.waitlisted", v 1,
        "The provider was full, so the prescription waits for a place under the agreement.";
    PrescriptionAccepted => "prescription.accepted", v 1,
        "The provider accepted the prescription and will offer the person a place.";
    PrescriptionDeclined => "prescription.declined", v 1,
        "The provider declined the prescription or did not answer in time.";
    SessionAttended => "session.attended", v 1,
        "The person attended a session of the prescribed activity.";
    SessionMissed => "session.missed", v 1,
        "The person missed a session.";
    SessionCancelled => "session.cancelled", v 1,
        "A session was cancelled by the provider or the person before it took place.";
    SessionRetracted => "session.retracted", v 1,
        "An attendance recorded in error was withdrawn.";
    PrescriptionCompleted => "prescription.completed", v 1,
        "The person completed the prescribed activity.";
    PrescriptionEnded => "prescription.ended", v 1,
        "The prescription ended before completion.";
    OutcomeMeasured => "outcome.measured", v 1,
        "A wellbeing instrument was completed at baseline or follow-up.";
    ReferralReferredBack => "referral.referred_back", v 1,
        "The link worker referred the person back to a clinician, for example in a crisis.";
    CaseClosed => "case.closed", v 1,
        "The link worker closed the case.";
    BudgetAllocated => "budget.allocated", v 1,
        "A commissioner allocated a budget to an anchor for a financial year.";
    AgreementSigned boxed => "agreement.signed", v 1,
        "An anchor and a provider signed an agreement with its capacity and tariff.";
    AgreementAmended boxed => "agreement.amended", v 1,
        "An agreement's tariff and capacity changed from a date.";
    CapacityGrantAwarded => "capacity_grant.awarded", v 1,
        "An anchor granted a provider money from its capacity-building budget.";
    PaymentRunRecorded => "payment_run.recorded", v 1,
        "An anchor paid providers what they had earned through a date.";
    ArrsRulesPublished boxed => "arrs_rules.published", v 1,
        "A version of a financial year's ARRS rules, in force from a date.";
    PcnRegistered boxed => "pcn.registered", v 1,
        "A Primary Care Network joined ARRS with its member practices.";
    PcnPopulationRecorded => "pcn.population_recorded", v 1,
        "A PCN's registered list size on a date, raw and weighted.";
    PcnArrsSumNotified boxed => "pcn.arrs_sum_notified", v 1,
        "NHS England notified a PCN of its combined ARRS sum for a year.";
    LinkWorkerEmployed boxed => "link_worker.employed", v 1,
        "A PCN took on a link worker, identified by a pseudonymous id.";
    LinkWorkerWteChanged => "link_worker.wte_changed", v 1,
        "A link worker's hours changed from a date.";
    LinkWorkerLeft => "link_worker.left", v 1,
        "A link worker left the post.";
    LinkWorkerCostPaid => "link_worker.cost_paid", v 1,
        "What a link worker actually cost for a month: salary and employer on-costs paid, or what the PCN paid the VCSE supplier for the worker.";
    ArrsClaimSubmitted => "arrs.claim_submitted", v 1,
        "A PCN claimed reimbursement for a month.";
    ArrsClaimPaid => "arrs.claim_paid", v 1,
        "A claim was paid.";
    SibContractPublished boxed => "sib_contract.published", v 1,
        "An outcome contract was published: eligibility, outcomes, payers and their shares and caps, investors and the verifier.";
    CohortCostRecorded => "cohort_cost.recorded", v 1,
        "Secondary-care cost of a whole cohort for a year, aggregated: never a person's.";
    SibOutcomeClaimed boxed => "sib_outcome.claimed", v 1,
        "The provider claimed an outcome: for a person (`referral_id`) or for the cohort.";
    SibOutcomeVerified => "sib_outcome.verified", v 1,
        "The verifier signed off a claim's evidence: it is now due from the payers.";
    SibOutcomeWithdrawn => "sib_outcome.withdrawn", v 1,
        "The verifier withdrew an outcome after audit: what was due for it is reversed in the period of the withdrawal.";
    SibPaymentMade => "sib_payment.made", v 1,
        "A payer paid outcome payments for a period.";
}

/// Every event type the ledger knows, in pathway order.
pub fn catalogue() -> &'static [EventType] {
    CATALOGUE
}

/// The place in [`catalogue`] of the type named `type_name`.
pub fn place_of(type_name: &str) -> Option<usize> {
    catalogue().iter().position(|entry| entry.name == type_name)
}

impl Event {
    /// Decodes a stored or submitted payload. Refuses, in this order: an unknown type, an
    /// unsupported schema version, any string that contains an NHS number, a payload that does not
    /// fit the type (missing, mistyped or unknown fields), and values the type's rules forbid
    /// (such as outcome scores out of range). Each refusal names the problem and its JSON path.
    pub fn decode(
        type_name: &str,
        schema_version: u32,
        data: Value,
    ) -> Result<Event, CatalogueError> {
        let entry = catalogue()
            .iter()
            .find(|entry| entry.name == type_name)
            .ok_or_else(|| CatalogueError::UnknownType {
                type_name: type_name.to_owned(),
            })?;
        if schema_version != entry.schema_version {
            return Err(CatalogueError::UnsupportedSchemaVersion {
                type_name: type_name.to_owned(),
                schema_version,
                supported: entry.schema_version,
            });
        }
        // Scanning before deserialising keeps an NHS number out of serde's messages, which quote
        // the offending value.
        if let Some(path) = find_nhs_number(&data) {
            return Err(CatalogueError::PersonalData {
                type_name: type_name.to_owned(),
                path,
            });
        }
        let invalid = |problem: Invalid| CatalogueError::InvalidData {
            type_name: type_name.to_owned(),
            path: problem.path,
            message: problem.message,
        };
        let event = Event::deserialize_known(entry.name, data)
            .expect("every catalogue entry has a payload type")
            .map_err(invalid)?;
        event.check().map_err(invalid)?;
        Ok(event)
    }

    /// Decodes a submitted payload from its JSON text, accepting and refusing exactly what
    /// [`Event::decode`] does. A payload with no escapes and no string that could be an NHS
    /// number is read straight into its type; any other, or one that does not fit, goes the
    /// long way, through a JSON tree, for its precise refusal.
    pub fn decode_text(
        type_name: &str,
        schema_version: u32,
        data: &str,
    ) -> Result<Event, CatalogueError> {
        if !crate::identifiers::text_may_hold_nhs_number(data)
            && let Ok(event) = Event::decode_stored(type_name, schema_version, data)
            && event.check().is_ok()
        {
            return Ok(event);
        }
        let data: Value =
            serde_json::from_str(data).map_err(|error| CatalogueError::InvalidData {
                type_name: type_name.to_owned(),
                path: "data".to_owned(),
                message: error.to_string(),
            })?;
        Event::decode(type_name, schema_version, data)
    }

    /// Rules on values that serde cannot express.
    fn check(&self) -> Result<(), Invalid> {
        match self {
            Event::OutcomeMeasured(payload) => {
                payload.check_item_scores().map_err(|message| Invalid {
                    path: format!("{PAYLOAD_PATH_ROOT}.item_scores"),
                    message,
                })
            }
            Event::PaymentRunRecorded(payload) => {
                if payload.part == 0 || payload.part > payload.parts {
                    return Err(invalid_at(
                        "part",
                        format!(
                            "part {} of {}: parts count from 1 to `parts`",
                            payload.part, payload.parts
                        ),
                    ));
                }
                for (index, line) in payload.lines.iter().enumerate() {
                    funding::check_positive_pence(line.amount).map_err(|message| {
                        invalid_at(&format!("lines[{index}].amount"), message)
                    })?;
                }
                Ok(())
            }
            Event::BudgetAllocated(payload) => funding::check_positive_pence(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::CapacityGrantAwarded(payload) => funding::check_positive_pence(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::AgreementSigned(payload) => {
                if payload.valid_to < payload.valid_from {
                    return Err(invalid_at(
                        "valid_to",
                        format!(
                            "{} is before valid_from {}",
                            payload.valid_to, payload.valid_from
                        ),
                    ));
                }
                check_terms(payload.capacity, &payload.tariff)
            }
            Event::AgreementAmended(payload) => {
                if payload.version < 2 {
                    return Err(invalid_at(
                        "version",
                        "an amendment is version 2 or later; version 1 is the signed agreement"
                            .into(),
                    ));
                }
                check_terms(payload.capacity, &payload.tariff)
            }
            Event::ArrsRulesPublished(payload) => arrs_rules(payload),
            Event::SibContractPublished(payload) => sib_contract(payload),
            Event::CohortCostRecorded(payload) => arrs::check_not_negative(payload.cost)
                .map_err(|message| invalid_at("cost", message)),
            Event::SibOutcomeClaimed(payload) => funding::check_positive_pence(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::SibPaymentMade(payload) => funding::check_positive_pence(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::PcnRegistered(payload) if payload.nation != crate::roles::Nation::England => {
                Err(invalid_at(
                    "nation",
                    format!(
                        "ARRS is English: a PCN in {:?} is not part of the scheme",
                        payload.nation
                    ),
                ))
            }
            Event::PcnPopulationRecorded(payload)
                if payload.weighted_list_size.is_sign_negative() =>
            {
                Err(invalid_at(
                    "weighted_list_size",
                    "a list size is not negative".into(),
                ))
            }
            Event::PcnArrsSumNotified(payload) => funding::check_positive_pence(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::LinkWorkerEmployed(payload) => {
                payload
                    .wte
                    .check_for_one_worker()
                    .map_err(|m| invalid_at("wte", m))?;
                arrs::check_not_negative(payload.monthly_salary)
                    .map_err(|m| invalid_at("monthly_salary", m))?;
                arrs::check_not_negative(payload.monthly_on_costs)
                    .map_err(|m| invalid_at("monthly_on_costs", m))
            }
            Event::LinkWorkerWteChanged(payload) => payload
                .wte
                .check_for_one_worker()
                .map_err(|m| invalid_at("wte", m)),
            Event::LinkWorkerCostPaid(payload) => arrs::check_not_negative(payload.amount)
                .map_err(|message| invalid_at("amount", message)),
            Event::ArrsClaimSubmitted(payload) => {
                arrs::check_pennies(payload.amount).map_err(|message| invalid_at("amount", message))
            }
            Event::ArrsClaimPaid(payload) => {
                arrs::check_pennies(payload.amount).map_err(|message| invalid_at("amount", message))
            }
            _ => Ok(()),
        }
    }
}

/// What every version of an agreement must hold: room for someone, and a usable tariff.
/// A contract must run forwards, have caps and pay for outcomes it can price.
fn sib_contract(payload: &SibContractPublished) -> Result<(), Invalid> {
    if payload.ends_on < payload.starts_on {
        return Err(invalid_at(
            "ends_on",
            format!(
                "{} is before starts_on {}",
                payload.ends_on, payload.starts_on
            ),
        ));
    }
    funding::check_positive_pence(payload.total_cap).map_err(|m| invalid_at("total_cap", m))?;
    for (index, payer) in payload.payers.iter().enumerate() {
        funding::check_positive_pence(payer.cap)
            .map_err(|m| invalid_at(&format!("payers[{index}].cap"), m))?;
    }
    crate::terms::check_contract(
        &payload.outcomes,
        &payload.payers,
        &payload.phases,
        payload.outcome_pot,
    )
    .map_err(|(field, message)| invalid_at(&field, message))
}

/// A rules version must fall within its year and price something.
fn arrs_rules(payload: &ArrsRulesPublished) -> Result<(), Invalid> {
    if payload.version == 0 {
        return Err(invalid_at("version", "versions count from 1".into()));
    }
    if !payload.financial_year.contains(payload.effective_from) {
        return Err(invalid_at(
            "effective_from",
            format!(
                "{} is outside {}: a revision takes effect within its own year",
                payload.effective_from, payload.financial_year
            ),
        ));
    }
    if payload.source.trim().is_empty() {
        return Err(invalid_at(
            "source",
            "name where the figures were published".into(),
        ));
    }
    funding::check_positive_pence(payload.link_worker_maximum_per_wte)
        .map_err(|message| invalid_at("link_worker_maximum_per_wte", message))?;
    arrs::check_not_negative(payload.supplier_contribution_per_wte)
        .map_err(|message| invalid_at("supplier_contribution_per_wte", message))?;
    payload
        .entitlement
        .check()
        .map_err(|message| invalid_at("entitlement", message))
}

fn check_terms(capacity: u32, tariff: &crate::terms::Tariff) -> Result<(), Invalid> {
    if capacity == 0 {
        return Err(invalid_at(
            "capacity",
            "an agreement takes at least one person at a time".into(),
        ));
    }
    tariff
        .check()
        .map_err(|error| invalid_at("tariff", error.to_string()))
}

fn invalid_at(field: &str, message: String) -> Invalid {
    Invalid {
        path: format!("{PAYLOAD_PATH_ROOT}.{field}"),
        message,
    }
}

/// Deserialises a payload, reporting the JSON path of the first problem.
fn from_data<T: DeserializeOwned>(data: Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(data).map_err(|error| {
        let mut path = String::from(PAYLOAD_PATH_ROOT);
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key }
                | serde_path_to_error::Segment::Enum { variant: key } => {
                    path.push('.');
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Unknown => path.push_str(".?"),
            }
        }
        let message = error.inner().to_string();
        // Serde reports a missing field at the enclosing object; pointing at the field itself
        // tells the caller exactly what to add.
        if let Some(field) = missing_field_name(&message) {
            path.push('.');
            path.push_str(field);
        }
        Invalid { path, message }
    })
}

/// The field named by serde's "missing field `x`" message.
fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

#[cfg(test)]
mod tests;
