use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::identifiers::{OdsCode, PersonId};
use crate::roles::{Nation, Role};
use crate::terms::{FinancialYear, Tariff};

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

/// One event of every type, with optional fields filled so that they round-trip too.
pub(super) fn samples() -> Vec<Event> {
    let referral_id = id(1);
    let prescription_id = id(2);
    let session_id = id(3);
    let mut events = vec![
        Event::OrganisationRegistered(OrganisationRegistered {
            organisation: ods("U12345"),
            name: "Riverside PCN".to_owned(),
            role: Role::Pcn,
            nation: Nation::England,
            parent: Some(ods("QWO")),
        }),
        Event::ReferralReceived(Box::new(ReferralReceived {
            referral_id,
            person_id: PersonId(id(9)),
            source: ReferralSource::GpPractice,
            referrer: Some(ods("B82005")),
            link_worker_organisation: ods("ANCHOR1"),
            reasons: vec![ReferralReason::Loneliness, ReferralReason::Financial],
            age_band: AgeBand::From65To74,
            conditions: vec![LongTermCondition::Copd, LongTermCondition::Diabetes],
        })),
        Event::ReferralAccepted(ReferralAccepted { referral_id }),
        Event::ReferralDeclined(ReferralDeclined {
            referral_id,
            reason: ReferralDeclineReason::UnableToContact,
        }),
        Event::ReferralRedirected(ReferralRedirected {
            referral_id,
            to_organisation: ods("ANCHOR2"),
            reason: RedirectReason::OutOfArea,
        }),
        Event::AssessmentHeld(AssessmentHeld {
            referral_id,
            duration_minutes: 90,
        }),
        Event::PlanAgreed(PlanAgreed {
            referral_id,
            plan_id: id(4),
            needs: vec![ReferralReason::PhysicalActivity],
        }),
        Event::PlanAmended(PlanAmended {
            referral_id,
            plan_id: id(4),
            needs: vec![],
        }),
        Event::PrescriptionIssued(PrescriptionIssued {
            prescription_id,
            referral_id,
            provider: ods("VCSE042"),
            activity_type: ActivityType::Gardening,
            agreement_id: Some(id(5)),
        }),
        Event::PrescriptionWaitlisted(PrescriptionWaitlisted {
            prescription_id,
            referral_id,
            provider: ods("VCSE042"),
            activity_type: ActivityType::Gardening,
            agreement_id: id(5),
        }),
        Event::PrescriptionAccepted(PrescriptionAccepted { prescription_id }),
        Event::PrescriptionDeclined(PrescriptionDeclined {
            prescription_id,
            reason: PrescriptionDeclineReason::NoResponse,
        }),
        Event::SessionAttended(SessionAttended {
            prescription_id,
            session_id,
        }),
        Event::SessionMissed(SessionMissed {
            prescription_id,
            session_id,
            notice_given: false,
        }),
        Event::SessionCancelled(SessionCancelled {
            prescription_id,
            session_id,
            cancelled_by: CancelledBy::Person,
        }),
        Event::SessionRetracted(SessionRetracted {
            prescription_id,
            session_id,
            reason: RetractionReason::RecordedInError,
        }),
        Event::PrescriptionCompleted(PrescriptionCompleted { prescription_id }),
        Event::PrescriptionEnded(PrescriptionEnded {
            prescription_id,
            reason: PrescriptionEndReason::ProviderWithdrew,
        }),
        Event::OutcomeMeasured(OutcomeMeasured {
            referral_id,
            instrument: Instrument::Swemwbs,
            stage: MeasureStage::Baseline,
            item_scores: vec![1, 2, 3, 4, 5, 3, 2],
        }),
        Event::ReferralReferredBack(ReferralReferredBack {
            referral_id,
            to_organisation: ods("B82005"),
            reason: ReferBackReason::Crisis,
        }),
        Event::CaseClosed(CaseClosed {
            referral_id,
            reason: CaseCloseReason::GoalsMet,
        }),
        Event::BudgetAllocated(BudgetAllocated {
            allocation_id: id(4),
            commissioner: ods("QHM"),
            anchor: ods("ANC01"),
            financial_year: FinancialYear::starting(2026),
            account: BudgetAccount::Activities,
            amount: money("120000.00"),
        }),
        Event::AgreementSigned(Box::new(AgreementSigned {
            agreement_id: id(5),
            anchor: ods("ANC01"),
            provider: ods("VCS01"),
            valid_from: date(2026, 4, 1),
            valid_to: date(2027, 3, 31),
            capacity: 12,
            response_window_days: 5,
            activity_types: vec![ActivityType::Walking],
            tariff: tariff(),
        })),
        Event::AgreementAmended(Box::new(AgreementAmended {
            agreement_id: id(5),
            version: 2,
            effective_from: date(2026, 10, 1),
            capacity: 15,
            tariff: Tariff {
                session_fee: Some(money("17.50")),
                ..tariff()
            },
        })),
        Event::CapacityGrantAwarded(CapacityGrantAwarded {
            grant_id: id(6),
            anchor: ods("ANC01"),
            provider: ods("VCS01"),
            financial_year: FinancialYear::starting(2026),
            amount: money("2000.00"),
        }),
        Event::PaymentRunRecorded(PaymentRunRecorded {
            part: 1,
            parts: 1,
            run_id: id(7),
            anchor: ods("ANC01"),
            through: date(2026, 5, 31),
            lines: vec![PaymentLine {
                provider: ods("VCS01"),
                prescription_id,
                kind: PaymentLineKind::Payment,
                amount: money("55.00"),
                positions: vec![12, 13, 14],
            }],
        }),
    ];
    events.extend(arrs_samples());
    events.extend(sib_samples());
    events
}

fn sib_samples() -> Vec<Event> {
    let contract_id = id(20);
    let terms = crate::terms::read_terms(include_str!("../../rules/sib/ways-to-wellness.toml"))
        .expect("the example contract reads");
    let contract = terms.publications.into_iter().next().unwrap().event;
    let Event::SibContractPublished(mut contract) = contract else {
        panic!("{contract:?}");
    };
    contract.contract_id = contract_id;
    vec![
        Event::SibContractPublished(contract),
        Event::CohortCostRecorded(CohortCostRecorded {
            contract_id,
            financial_year: FinancialYear::starting(2017),
            cohort: Cohort::Intervention,
            people: 1_200,
            cost: money("1602000.00"),
        }),
        Event::SibOutcomeClaimed(Box::new(SibOutcomeClaimed {
            claim_id: id(21),
            contract_id,
            outcome_id: "star_improvement".into(),
            referral_id: None,
            period: "2017-03".parse().unwrap(),
            amount: money("1000.00"),
        })),
        Event::SibOutcomeVerified(SibOutcomeVerified {
            claim_id: id(21),
            contract_id,
        }),
        Event::SibOutcomeWithdrawn(SibOutcomeWithdrawn {
            claim_id: id(21),
            contract_id,
            reason: WithdrawalReason::EvidenceInvalid,
            period: "2017-06".parse().unwrap(),
        }),
        Event::SibPaymentMade(SibPaymentMade {
            contract_id,
            payer: ods("QHM"),
            period: "2017-03".parse().unwrap(),
            amount: money("500.00"),
        }),
    ]
}

fn arrs_samples() -> Vec<Event> {
    let pcn = || crate::identifiers::PcnCode::parse("U12345").unwrap();
    let link_worker_id = id(8);
    vec![
        Event::ArrsRulesPublished(Box::new(ArrsRulesPublished {
            financial_year: FinancialYear::starting(2019),
            version: 1,
            effective_from: date(2019, 7, 1),
            source: "NHS England, Network Contract DES 2019/20 (seed 001:313)".into(),
            entitlement: crate::terms::Entitlement::WteByPopulation {
                minimum_population: 30_000,
                one_wte_up_to: 100_000,
                population_per_further_wte: 50_000,
            },
            link_worker_maximum_per_wte: money("34113.00"),
            supplier_contribution_per_wte: money("2400.00"),
        })),
        Event::PcnRegistered(Box::new(PcnRegistered {
            pcn: pcn(),
            name: "Riverside PCN".into(),
            icb: ods("QHM"),
            member_practices: vec![ods("A81001"), ods("A81002")],
            nation: Nation::England,
        })),
        Event::PcnPopulationRecorded(PcnPopulationRecorded {
            pcn: pcn(),
            on: date(2019, 4, 1),
            raw_list_size: 52_000,
            weighted_list_size: "50110.5".parse().unwrap(),
        }),
        Event::PcnArrsSumNotified(Box::new(PcnArrsSumNotified {
            pcn: pcn(),
            financial_year: FinancialYear::starting(2022),
            amount: money("400000.00"),
            source: "NHS England ARRS sum notification".into(),
        })),
        Event::LinkWorkerEmployed(Box::new(LinkWorkerEmployed {
            link_worker_id,
            pcn: pcn(),
            employer: Employer::VcseSupplier {
                supplier: ods("VCS01"),
            },
            wte: "0.6".parse().unwrap(),
            start_date: date(2019, 8, 16),
            monthly_salary: money("1250.00"),
            monthly_on_costs: money("250.00"),
        })),
        Event::LinkWorkerWteChanged(LinkWorkerWteChanged {
            link_worker_id,
            wte: "0.8".parse().unwrap(),
            effective_from: date(2019, 10, 1),
        }),
        Event::LinkWorkerLeft(LinkWorkerLeft {
            link_worker_id,
            last_day: date(2020, 3, 31),
        }),
        Event::LinkWorkerCostPaid(LinkWorkerCostPaid {
            link_worker_id,
            month: "2019-08".parse().unwrap(),
            amount: money("800.00"),
        }),
        Event::ArrsClaimSubmitted(ArrsClaimSubmitted {
            claim_id: id(10),
            pcn: pcn(),
            month: "2019-08".parse().unwrap(),
            amount: money("800.00"),
        }),
        Event::ArrsClaimPaid(ArrsClaimPaid {
            claim_id: id(10),
            pcn: pcn(),
            amount: money("800.00"),
            paid_on: date(2019, 9, 30),
        }),
    ]
}

#[test]
fn arrs_facts_outside_the_rules_are_refused_at_the_field() {
    let of = |type_name: &str| {
        let event = arrs_samples()
            .into_iter()
            .find(|e| e.type_name() == type_name)
            .unwrap();
        match event {
            Event::PcnRegistered(p) => serde_json::to_value(p),
            Event::LinkWorkerEmployed(p) => serde_json::to_value(p),
            Event::ArrsRulesPublished(p) => serde_json::to_value(p),
            other => panic!("no sample shape for {other:?}"),
        }
        .unwrap()
    };
    let mut welsh = of("pcn.registered");
    welsh["nation"] = json!("wales");
    let (path, message) = invalid("pcn.registered", welsh);
    assert_eq!(path, "data.nation");
    assert!(message.contains("ARRS is English"), "{message}");
    let mut bad_pcn = of("pcn.registered");
    bad_pcn["pcn"] = json!("A12345");
    assert_eq!(invalid("pcn.registered", bad_pcn).0, "data.pcn");
    let mut too_much = of("link_worker.employed");
    too_much["wte"] = json!("1.5");
    assert_eq!(invalid("link_worker.employed", too_much).0, "data.wte");
    let mut outside = of("arrs_rules.published");
    outside["effective_from"] = json!("2020-04-01");
    let (path, message) = invalid("arrs_rules.published", outside);
    assert_eq!(path, "data.effective_from");
    assert!(message.contains("outside 2019/20"), "{message}");
}

fn money(text: &str) -> crate::money::Money {
    text.parse().unwrap()
}

fn date(year: i32, month: u32, day: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

fn tariff() -> Tariff {
    Tariff {
        engagement_fee: Some(money("25.00")),
        session_fee: Some(money("15.00")),
        funded_sessions: Some(10),
        completion_fee: Some(money("50.00")),
        completion_min_sessions: Some(8),
        cap_per_referral: Some(money("200.00")),
        missed_session_fee: None,
    }
}

#[test]
fn funding_terms_that_cannot_be_used_are_refused_at_the_field() {
    let signed = samples().into_iter().find_map(|event| match event {
        Event::AgreementSigned(payload) => Some(payload),
        _ => None,
    });
    let mut signed = serde_json::to_value(signed.expect("a signed agreement sample")).unwrap();
    signed["valid_to"] = json!("2026-03-01");
    let (path, message) = invalid("agreement.signed", signed.clone());
    assert_eq!(path, "data.valid_to");
    assert!(message.contains("before valid_from"), "{message}");
    signed["valid_to"] = json!("2027-03-31");
    signed["tariff"]["funded_sessions"] = json!(null);
    signed["tariff"]["cap_per_referral"] = json!(null);
    let (path, message) = invalid("agreement.signed", signed);
    assert_eq!(path, "data.tariff");
    assert!(message.contains("funded_sessions"), "{message}");
    let budget = json!({
        "allocation_id": id(9), "commissioner": "QHM", "anchor": "ANC01",
        "financial_year": "2026/27", "account": "activities", "amount": "0.00",
    });
    assert_eq!(invalid("budget.allocated", budget).0, "data.amount");
}

/// Decodes `data` both ways, from the JSON tree and from its text, and checks they agree.
fn decode_json(type_name: &str, data: Value) -> Result<Event, CatalogueError> {
    let from_text = Event::decode_text(type_name, 1, &data.to_string());
    let decoded = Event::decode(type_name, 1, data);
    assert_eq!(from_text, decoded, "decode_text and decode disagree");
    decoded
}

fn invalid(type_name: &str, data: Value) -> (String, String) {
    match decode_json(type_name, data) {
        Err(CatalogueError::InvalidData {
            type_name: refused,
            path,
            message,
        }) => {
            assert_eq!(refused, type_name);
            (path, message)
        }
        other => panic!("expected InvalidData, got {other:?}"),
    }
}

fn referral_received_json() -> Value {
    json!({
        "referral_id": "0190a8e2-7b1c-7000-8000-000000000001",
        "person_id": "0190a8e2-7b1c-7000-8000-000000000002",
        "source": "self_referral",
        "referrer": null,
        "link_worker_organisation": "ANCHOR1",
        "reasons": ["loneliness"],
        "age_band": "75+",
        "conditions": [],
    })
}

#[test]
fn samples_cover_the_catalogue_once_each_in_order() {
    let names: Vec<&str> = samples().iter().map(Event::type_name).collect();
    let catalogued: Vec<&str> = catalogue().iter().map(|entry| entry.name).collect();
    assert_eq!(names, catalogued);
}

#[test]
fn catalogue_names_are_unique_dotted_and_version_one() {
    let mut names: Vec<&str> = catalogue().iter().map(|entry| entry.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), catalogue().len());
    for entry in catalogue() {
        assert_eq!(entry.schema_version, 1, "{}", entry.name);
        assert!(
            entry.name.split('.').count() == 2
                && entry
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "{}",
            entry.name
        );
        assert!(entry.description.ends_with('.'), "{}", entry.name);
    }
}

#[test]
fn every_type_round_trips_through_its_encoding() {
    for event in samples() {
        let text = event.encode();
        let data: Value = serde_json::from_str(&text).unwrap();
        let decoded = Event::decode(event.type_name(), event.schema_version(), data).unwrap();
        assert_eq!(decoded, event, "{}", event.type_name());
        assert_eq!(decoded.encode(), text, "{}", event.type_name());
    }
}

#[test]
fn stored_payloads_decode_straight_from_their_text() {
    for event in samples() {
        let decoded =
            Event::decode_stored(event.type_name(), event.schema_version(), &event.encode());
        assert_eq!(decoded.unwrap(), event, "{}", event.type_name());
    }
    let unknown = Event::decode_stored("referral.lost", 1, "{}").unwrap_err();
    assert!(
        matches!(unknown, CatalogueError::UnknownType { .. }),
        "{unknown:?}"
    );
    let version = Event::decode_stored("referral.accepted", 2, "{}").unwrap_err();
    assert!(
        matches!(
            version,
            CatalogueError::UnsupportedSchemaVersion { supported: 1, .. }
        ),
        "{version:?}"
    );
    let damaged = Event::decode_stored("referral.accepted", 1, "{\"referral_id\": 7}").unwrap_err();
    assert!(
        matches!(damaged, CatalogueError::InvalidData { .. }),
        "{damaged:?}"
    );
}

#[test]
fn submitted_text_decodes_as_its_json_tree_does() {
    for event in samples() {
        let decoded =
            Event::decode_text(event.type_name(), event.schema_version(), &event.encode());
        assert_eq!(decoded.unwrap(), event, "{}", event.type_name());
    }
    // An escape can spell an NHS number that no scan of the raw text would see.
    let text = referral_received_json()
        .to_string()
        .replace("\"ANCHOR1\"", "\"\\u0039434765919\"");
    assert_eq!(
        Event::decode_text("referral.received", 1, &text).unwrap_err(),
        CatalogueError::PersonalData {
            type_name: "referral.received".to_owned(),
            path: "data.link_worker_organisation".to_owned(),
        }
    );
    // A repeated key fails serde's straight read, but a JSON tree keeps the last value.
    let text = referral_received_json().to_string().replacen(
        '{',
        "{\"link_worker_organisation\":\"OTHER\",",
        1,
    );
    let tree: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        Event::decode_text("referral.received", 1, &text),
        Event::decode("referral.received", 1, tree)
    );
    let broken = Event::decode_text("referral.accepted", 1, "{\"referral_id\": ").unwrap_err();
    assert!(
        matches!(&broken, CatalogueError::InvalidData { path, .. } if path == "data"),
        "{broken:?}"
    );
}

#[test]
fn encoding_keeps_declaration_order_and_stable_strings() {
    let event = decode_json("referral.received", referral_received_json()).unwrap();
    assert_eq!(
        event.encode(),
        concat!(
            r#"{"referral_id":"0190a8e2-7b1c-7000-8000-000000000001","#,
            r#""person_id":"0190a8e2-7b1c-7000-8000-000000000002","#,
            r#""source":"self_referral","referrer":null,"link_worker_organisation":"ANCHOR1","#,
            r#""reasons":["loneliness"],"age_band":"75+","conditions":[]}"#
        )
    );
}

#[test]
fn absent_optional_field_decodes_as_none() {
    let mut data = referral_received_json();
    data.as_object_mut().unwrap().remove("referrer");
    let Event::ReferralReceived(payload) = decode_json("referral.received", data).unwrap() else {
        panic!("wrong variant");
    };
    assert_eq!(payload.referrer, None);
}

#[test]
fn unknown_type_is_refused_pointing_at_the_catalogue() {
    let error = decode_json("referral.recieved", referral_received_json()).unwrap_err();
    assert_eq!(
        error,
        CatalogueError::UnknownType {
            type_name: "referral.recieved".to_owned()
        }
    );
    assert!(error.to_string().contains("contracts/EVENTS.md"), "{error}");
}

#[test]
fn unsupported_schema_version_is_refused_naming_the_supported_one() {
    let error = Event::decode("referral.received", 2, referral_received_json()).unwrap_err();
    assert_eq!(
        error,
        CatalogueError::UnsupportedSchemaVersion {
            type_name: "referral.received".to_owned(),
            schema_version: 2,
            supported: 1,
        }
    );
    assert!(error.to_string().contains("reads version 1"), "{error}");
}

#[test]
fn missing_field_is_refused_at_the_field_path() {
    let mut data = referral_received_json();
    data.as_object_mut().unwrap().remove("referral_id");
    let (path, message) = invalid("referral.received", data);
    assert_eq!(path, "data.referral_id");
    assert_eq!(message, "missing field `referral_id`");
}

#[test]
fn mistyped_field_is_refused_at_the_field_path() {
    let (path, message) = invalid(
        "assessment.held",
        json!({ "referral_id": Uuid::nil(), "duration_minutes": "ninety" }),
    );
    assert_eq!(path, "data.duration_minutes");
    assert!(message.starts_with("invalid type: string"), "{message}");

    let mut data = referral_received_json();
    data["reasons"] = json!(["loneliness", "boredom"]);
    let (path, message) = invalid("referral.received", data);
    assert_eq!(path, "data.reasons[1]");
    assert!(
        message.starts_with("unknown variant `boredom`"),
        "{message}"
    );

    let (path, message) = invalid("referral.accepted", json!({ "referral_id": "not-a-uuid" }));
    assert_eq!(path, "data.referral_id");
    assert!(message.contains("UUID"), "{message}");
}

#[test]
fn invalid_ods_code_is_refused_with_the_identifier_message() {
    let mut data = referral_received_json();
    data["link_worker_organisation"] = json!("anchor1");
    let (path, message) = invalid("referral.received", data);
    assert_eq!(path, "data.link_worker_organisation");
    assert!(message.contains("is not an ODS code"), "{message}");
}

#[test]
fn unknown_field_is_refused_naming_it() {
    let mut data = referral_received_json();
    data["postcode"] = json!("NE1 4ST");
    let (path, message) = invalid("referral.received", data);
    assert_eq!(path, "data.postcode");
    assert!(message.starts_with("unknown field `postcode`"), "{message}");
}

#[test]
fn payload_that_is_not_an_object_is_refused_at_the_root() {
    let (path, message) = invalid("referral.accepted", json!(null));
    assert_eq!(path, "data");
    assert!(message.starts_with("invalid type: null"), "{message}");
}

#[test]
fn nhs_number_anywhere_in_a_string_is_refused_with_its_path() {
    for number in ["9434765919", "943 476 5919"] {
        let mut data = referral_received_json();
        data["link_worker_organisation"] = json!(number);
        let error = decode_json("referral.received", data).unwrap_err();
        assert_eq!(
            error,
            CatalogueError::PersonalData {
                type_name: "referral.received".to_owned(),
                path: "data.link_worker_organisation".to_owned(),
            }
        );
        let message = error.to_string();
        assert!(message.contains("looks like an NHS number"), "{message}");
        assert!(
            !message.contains("5919"),
            "the message must not repeat it: {message}"
        );
    }
}

#[test]
fn nhs_number_in_an_unknown_field_is_refused_as_personal_data_first() {
    let mut data = referral_received_json();
    data["note"] = json!("NHS no. 943 476 5919");
    let error = decode_json("referral.received", data).unwrap_err();
    assert_eq!(
        error,
        CatalogueError::PersonalData {
            type_name: "referral.received".to_owned(),
            path: "data.note".to_owned(),
        }
    );
}

#[test]
fn ten_digits_with_a_wrong_check_digit_are_not_personal_data() {
    let mut data = referral_received_json();
    data["link_worker_organisation"] = json!("9434765918");
    let Event::ReferralReceived(payload) = decode_json("referral.received", data).unwrap() else {
        panic!("wrong variant");
    };
    assert_eq!(payload.link_worker_organisation.as_str(), "9434765918");
}

#[test]
fn outcome_item_scores_are_checked_against_the_instrument() {
    let outcome = |instrument: &str, scores: Value| {
        json!({
            "referral_id": Uuid::nil(),
            "instrument": instrument,
            "stage": "follow_up",
            "item_scores": scores,
        })
    };
    assert!(decode_json("outcome.measured", outcome("ons4", json!([0, 10, 5, 10]))).is_ok());
    assert!(decode_json("outcome.measured", outcome("phq9", json!(vec![3; 9]))).is_ok());

    let (path, message) = invalid("outcome.measured", outcome("swemwbs", json!(vec![3; 6])));
    assert_eq!(path, "data.item_scores");
    assert_eq!(
        message,
        "swemwbs expects 7 item scores, each from 1 to 5; got 6"
    );

    let (path, message) = invalid(
        "outcome.measured",
        outcome("gad7", json!([0, 1, 2, 3, 4, 0, 0])),
    );
    assert_eq!(path, "data.item_scores");
    assert_eq!(
        message,
        "gad7 expects 7 item scores, each from 0 to 3; item 4 is 4"
    );

    let (path, message) = invalid(
        "outcome.measured",
        outcome("wellbeing_star", json!(vec![0; 8])),
    );
    assert_eq!(path, "data.item_scores");
    assert!(
        message.ends_with("each from 1 to 10; item 0 is 0"),
        "{message}"
    );

    let (path, message) = invalid("outcome.measured", outcome("wemwbs", json!([300])));
    assert_eq!(path, "data.item_scores[0]");
    assert!(message.contains("expected u8"), "{message}");
}

#[test]
fn an_event_is_the_size_of_a_common_payload_not_of_the_largest() {
    // A replay writes every event into a page and reads it in each fold; the payloads larger
    // than a payment run's (a referral received, an ARRS registration, a SIB claim, an
    // agreement) are boxed (see `payload_of!`). Unboxed, a referral made every event 112 bytes.
    let size = std::mem::size_of::<Event>();
    assert!(size <= 72, "an event takes {size} bytes");
    assert!(std::mem::size_of::<SibContractPublished>() > 2 * size);
}
