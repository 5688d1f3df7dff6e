//! The GraphQL API over HTTP as its clients meet it, against the real binary on SQLite and on
//! PostgreSQL: what each role may record and read, the pathway's rules, reading one's own
//! writes, client ids under concurrency, and malformed requests.

mod api_support;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_support::{
    A1, A2, Api, C1, I1, M1, N1, Outcome, P1, P2, Recorded, Stage, Target, Written, X1,
    mutation_text, prescription_only, received, referral_only, retracted, session,
};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use chrono::Utc;
use common::TestDb;
use followfund::admin;
use followfund::api::auth::{self, AuthError, Tokens};
use followfund::store::{Store, StoreOptions};
use followfund_contracts::{Nation, Role};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

per_backend!(
    each_role_reaches_only_its_own_work,
    pathway_rules_refuse_and_write_nothing,
    a_write_reads_back_at_its_position,
    a_client_id_records_once_under_concurrency,
    malformed_requests_get_clear_errors_and_the_server_stays_up,
    a_server_forgets_its_tokens_when_one_is_revoked,
);

// Short names so the matrices below read as grids.
const OK: Outcome = Outcome::Allowed;
const NO: Outcome = Outcome::Forbidden;
const BAD: Outcome = Outcome::BadInput;

/// The matrices' columns, in order.
const COLUMNS: [&str; 9] = [C1, A1, A2, P1, P2, N1, I1, X1, M1];

/// The fixture pathway every scope check reads: `R1` held by `A1` with prescription `RX1`
/// accepted by `P1`, and `R2` received by `A2`.
struct Fixture {
    r1: Uuid,
    r2: Uuid,
    /// The position of the fixture's last event, so reads can wait for all of it.
    at: u64,
}

async fn fixture(api: &Api) -> Fixture {
    let r1 = api.prepare(Stage::Taken, A1, P1).await;
    let r2 = api.prepare(Stage::Received, A2, P1).await;
    Fixture {
        r1: r1.referral,
        r2: r2.referral,
        at: r2.position,
    }
}

/// One query, and what each column's organisation gets from it.
struct QueryRow {
    what: &'static str,
    query: String,
    expected: [Outcome; 9],
}

fn q(what: &'static str, query: impl Into<String>, expected: [Outcome; 9]) -> QueryRow {
    QueryRow {
        what,
        query: query.into(),
        expected,
    }
}

#[rustfmt::skip]
fn query_matrix(fixture: &Fixture) -> Vec<QueryRow> {
    let at = fixture.at;
    let referral = |id: Uuid| format!(r#"{{ referral(id: "{id}", atLeast: {at}) {{ status steps {{ type }} }} }}"#);
    let stream = format!(r#"{{ stream(name: "referral-{}") {{ type hash }} }}"#, fixture.r1);
    vec![
        //                                                                                 C1  A1  A2  P1  P2  N1  I1  X1  M1
        q("me",                 "{ me { organisation role } }",                            [OK, OK, OK, OK, OK, OK, OK, OK, OK]),
        q("organisations",      "{ organisations { code role parent } }",                  [OK, OK, OK, OK, OK, OK, OK, OK, OK]),
        q("organisation(ANC1)", r#"{ organisation(code: "ANC1") { name } }"#,              [OK, OK, OK, OK, OK, OK, OK, OK, OK]),
        q("referral(R1)",       referral(fixture.r1),                                      [OK, OK, NO, OK, NO, NO, NO, OK, OK]),
        q("referral(R2)",       referral(fixture.r2),                                      [NO, NO, OK, NO, NO, NO, NO, OK, OK]),
        q("referrals",          format!("{{ referrals(atLeast: {at}) {{ referralId }} }}"), [OK, OK, OK, OK, OK, OK, NO, OK, OK]),
        q("events",             "{ events(first: 5) { edges { node { type } } } }",        [NO, NO, NO, NO, NO, NO, NO, OK, OK]),
        q("stream(R1)",         stream,                                                    [OK, NO, NO, NO, NO, NO, NO, OK, OK]),
        q("verify",             "{ verify { intact eventsChecked } }",                     [OK, NO, NO, NO, NO, NO, NO, OK, OK]),
    ]
}

/// One mutation on a referral brought to `stage` (held by `holder`, prescribed to `P1`), and
/// what each column's organisation gets when it sends it.
struct MutationRow {
    op: &'static str,
    holder: &'static str,
    stage: Stage,
    /// The payload, from the prepared referral and the caller's code.
    data: fn(&Target, &str) -> Value,
    expected: [Outcome; 9],
}

fn m(
    op: &'static str,
    holder: &'static str,
    stage: Stage,
    data: fn(&Target, &str) -> Value,
    expected: [Outcome; 9],
) -> MutationRow {
    MutationRow {
        op,
        holder,
        stage,
        data,
        expected,
    }
}

/// Every cell gets a referral of its own at the row's stage, so the only reason a cell can
/// fail is who sends it: a holder's success never turns the next column into a CONFLICT.
#[rustfmt::skip]
fn mutation_matrix() -> Vec<MutationRow> {
    use Stage::{Accepted, Attended, Fresh, Issued, Received, Taken};
    vec![
        //  operation              holder stage     payload                                                                                    C1  A1  A2  P1  P2  N1  I1  X1  M1
        // A link worker service receives for itself; an administrator's own code is no service.
        m("referralReceive",      A1, Fresh,    |t, me| received(t.referral, me),                                                            [NO, OK, OK, OK, OK, OK, NO, NO, BAD]),
        m("referralReceive",      A1, Fresh,    |t, _| received(t.referral, A1),                                                             [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("referralAccept",       A1, Received, |t, _| referral_only(t.referral),                                                            [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("referralAccept",       A2, Received, |t, _| referral_only(t.referral),                                                            [NO, NO, OK, NO, NO, NO, NO, NO, OK]),
        m("referralDecline",      A1, Received, |t, _| json!({ "referral_id": t.referral, "reason": "person_declined" }),                    [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("referralRedirect",     A1, Received, |t, _| json!({ "referral_id": t.referral, "to_organisation": A2, "reason": "out_of_area" }), [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("assessmentHold",       A1, Accepted, |t, _| json!({ "referral_id": t.referral, "duration_minutes": 45 }),                        [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("planAgree",            A1, Accepted, |t, _| json!({ "referral_id": t.referral, "plan_id": t.session, "needs": ["loneliness"] }), [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("planAmend",            A1, Accepted, |t, _| json!({ "referral_id": t.referral, "plan_id": t.session, "needs": ["housing"] }),    [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("prescriptionIssue",    A1, Accepted, |t, _| api_support::issued(t.referral, t.prescription, P1),                                 [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("prescriptionIssue",    A2, Accepted, |t, _| api_support::issued(t.referral, t.prescription, P1),                                 [NO, NO, OK, NO, NO, NO, NO, NO, OK]),
        m("outcomeMeasure",       A1, Accepted, |t, _| json!({ "referral_id": t.referral, "instrument": "ons4", "stage": "baseline", "item_scores": [7, 8, 6, 3] }), [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("referralReferBack",    A1, Accepted, |t, _| json!({ "referral_id": t.referral, "to_organisation": "A81001", "reason": "crisis" }), [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        m("caseClose",            A1, Accepted, |t, _| json!({ "referral_id": t.referral, "reason": "goals_met" }),                         [NO, OK, NO, NO, NO, NO, NO, NO, OK]),
        // The prescription's own steps are the provider's.
        m("prescriptionAccept",   A1, Issued,   |t, _| prescription_only(t.prescription),                                                   [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        m("prescriptionDecline",  A1, Issued,   |t, _| json!({ "prescription_id": t.prescription, "reason": "at_capacity" }),               [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        m("sessionAttend",        A1, Taken,    |t, _| session(t.prescription, t.session),                                                  [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        m("sessionMiss",          A1, Taken,    |t, _| json!({ "prescription_id": t.prescription, "session_id": t.session, "notice_given": false }), [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        m("sessionCancel",        A1, Taken,    |t, _| json!({ "prescription_id": t.prescription, "session_id": t.session, "cancelled_by": "provider" }), [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        m("prescriptionComplete", A1, Taken,    |t, _| prescription_only(t.prescription),                                                   [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
        // Ending early is the provider's or the referral's link worker service's.
        m("prescriptionEnd",      A1, Taken,    |t, _| json!({ "prescription_id": t.prescription, "reason": "person_withdrew" }),           [NO, OK, NO, OK, NO, NO, NO, NO, OK]),
        m("sessionRetract",       A1, Attended, |t, _| retracted(t.prescription, t.session),                                                [NO, NO, NO, OK, NO, NO, NO, NO, OK]),
    ]
}

/// Every role against every query and every mutation, on data in and out of its scope; then
/// requests with no token, an unknown one, a malformed header and a revoked one.
async fn each_role_reaches_only_its_own_work(db: TestDb) {
    let api = &Api::start(db).await;
    let fixture = fixture(api).await;
    let mut wrong = Vec::new();
    for row in query_matrix(&fixture) {
        let query = row.query.as_str();
        let cells = COLUMNS.iter().zip(&row.expected);
        let replies = join_all(cells.map(|(who, expected)| async move {
            (who, expected, api.gql(who, query, json!({})).await)
        }))
        .await;
        for (who, expected, reply) in replies {
            let got = reply.outcome();
            if &got != expected {
                wrong.push(format!(
                    "{} by {who}: expected {expected:?}, got {got:?}: {}",
                    row.what,
                    reply.message()
                ));
            } else if got != OK && !reply.body["data"].is_null() {
                wrong.push(format!("{} by {who}: refused yet answered data", row.what));
            }
        }
    }
    check_referral_lists(api, &fixture, &mut wrong).await;
    for row in mutation_matrix() {
        let cells = COLUMNS.iter().zip(&row.expected);
        let found = join_all(cells.map(|(who, expected)| mutation_cell(api, &row, who, expected)));
        wrong.extend(found.await.into_iter().flatten());
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    check_authentication(api).await;
}

/// The mismatch in one cell of the mutation matrix, if any: the outcome, and that a refusal
/// left its referral as it was while a success added exactly one step.
async fn mutation_cell(
    api: &Api,
    row: &MutationRow,
    who: &str,
    expected: &Outcome,
) -> Option<String> {
    let target = api.prepare(row.stage, row.holder, P1).await;
    let reply = api.mutate(who, row.op, (row.data)(&target, who)).await;
    let label = format!(
        "{} by {who} on a {:?} referral held by {}",
        row.op, row.stage, row.holder
    );
    let got = reply.outcome();
    if &got != expected {
        return Some(format!(
            "{label}: expected {expected:?}, got {got:?}: {}",
            reply.message()
        ));
    }
    if got == OK && !Written::of(&reply, row.op).written {
        return Some(format!("{label}: allowed but wrote nothing"));
    }
    if got != OK && !reply.body["data"].is_null() {
        return Some(format!(
            "{label}: refused yet answered data: {}",
            reply.body
        ));
    }
    let steps_after = api.steps(target.referral).await;
    let steps_expected = match (got == OK, target.steps) {
        (true, steps) => Some(steps + 1),
        (false, 0) => None,
        (false, steps) => Some(steps),
    };
    (steps_after != steps_expected)
        .then(|| format!("{label}: {steps_after:?} steps, expected {steps_expected:?}"))
}

/// `referrals` lists exactly what `referral(id)` lets each organisation see.
async fn check_referral_lists(api: &Api, fixture: &Fixture, wrong: &mut Vec<String>) {
    let (r1, r2) = (fixture.r1, fixture.r2);
    let visible: [(&str, Vec<Uuid>); 8] = [
        (C1, vec![r1]),
        (A1, vec![r1]),
        (A2, vec![r2]),
        (P1, vec![r1]),
        (P2, vec![]),
        (N1, vec![]),
        (X1, vec![r1, r2]),
        (M1, vec![r1, r2]),
    ];
    let query = "query($at: Int) { referrals(atLeast: $at) { referralId } }";
    for (who, mut expected) in visible {
        let reply = api.gql(who, query, json!({ "at": fixture.at })).await;
        let mut listed: Vec<Uuid> = reply
            .data("referrals")
            .as_array()
            .expect("a list")
            .iter()
            .map(|journey| {
                journey["referralId"]
                    .as_str()
                    .expect("an id")
                    .parse()
                    .expect("a UUID")
            })
            .collect();
        listed.sort();
        expected.sort();
        if listed != expected {
            wrong.push(format!(
                "referrals by {who}: listed {listed:?}, expected {expected:?}"
            ));
        }
    }
}

/// No token is UNAUTHENTICATED inside a 200; a token that is unknown, malformed or revoked is
/// refused with 401 before anything runs, and a write without a token writes nothing.
async fn check_authentication(api: &Api) {
    let me = "{ me { organisation role } }";
    let reply = api.post(None, me, json!({})).await;
    assert_eq!(reply.outcome(), Outcome::Unauthenticated, "{reply:?}");
    assert!(reply.body["data"].is_null(), "{reply:?}");

    let head = api.head().await;
    let data = received(Uuid::new_v4(), A1);
    let reply = api
        .post(
            None,
            &mutation_text("referralReceive"),
            json!({ "data": data }),
        )
        .await;
    assert_eq!(reply.outcome(), Outcome::Unauthenticated, "{reply:?}");
    assert_eq!(api.head().await, head, "a write without a token wrote");

    let unknown = format!("Bearer ff_{}", "0".repeat(64));
    let not_bearer = format!("Basic {}", api.token(A1));
    for header in [unknown.as_str(), not_bearer.as_str(), "Bearer "] {
        let reply = api.post(Some(header), me, json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{header}: {reply:?}"
        );
        assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{header}: {reply:?}");
        assert!(!reply.message().is_empty());
    }

    // The spare token works until an operator revokes it from another process, and the running
    // server refuses it once its next poll has seen the revocation.
    let (token_id, secret) = &api.spare_token;
    let bearer = format!("Bearer {secret}");
    let reply = api.post(Some(&bearer), me, json!({})).await;
    assert_eq!(reply.data("me")["organisation"], A1, "{reply:?}");
    api.revoke(*token_id).await;
    // Generous, as the machine may be loaded: the promise is a second or so, not a timing.
    let deadline = Instant::now() + Duration::from_millis(20 * auth::REVOCATION_DELAY_MS);
    let reply = loop {
        let reply = api.post(Some(&bearer), me, json!({})).await;
        if reply.status != StatusCode::OK || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(auth::REVOCATION_POLL_MS / 4)).await;
    };
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.code(), Some("UNAUTHENTICATED"), "{reply:?}");
    assert!(reply.message().contains("revoked"), "{reply:?}");
}

/// A server remembers the tokens it has found good, trusts them only after a poll of the
/// store, and forgets them all when the poll finds one more token revoked.
async fn a_server_forgets_its_tokens_when_one_is_revoked(db: TestDb) {
    let store = Store::open(&db.url, StoreOptions::default())
        .await
        .expect("opening the log");
    let name = "Anchor one";
    admin::organisation_add(&store, A1, name, Role::Anchor, Nation::England, None)
        .await
        .expect("registering an organisation");
    let (kept, _) = admin::token_create(&store, A1, Role::Anchor).await.unwrap();
    let (revoked, record) = admin::token_create(&store, A1, Role::Anchor).await.unwrap();
    let headers = |secret: &str| {
        let mut headers = HeaderMap::new();
        let value = format!("Bearer {secret}").parse().unwrap();
        headers.insert(AUTHORIZATION, value);
        headers
    };
    let tokens = Tokens::unpolled(store.clone());
    let principal = tokens.authenticate(&headers(&kept)).await.unwrap();
    assert_eq!(principal.map(|p| p.organisation).as_deref(), Some(A1));
    assert_eq!(tokens.remembered_count(), 0, "remembered before any poll");

    tokens.refresh().await.unwrap();
    for secret in [&kept, &revoked, &kept] {
        assert!(
            tokens
                .authenticate(&headers(secret))
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(tokens.remembered_count(), 2);
    assert_eq!(store.tokens_revoked_count().await.unwrap(), 0);

    assert!(
        store
            .token_revoke(record.token_id, Utc::now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .token_revoke(record.token_id, Utc::now())
            .await
            .unwrap()
    );
    assert_eq!(store.tokens_revoked_count().await.unwrap(), 1);
    // Until the next poll the server answers from what it remembers.
    assert!(
        tokens
            .authenticate(&headers(&revoked))
            .await
            .unwrap()
            .is_some()
    );

    tokens.refresh().await.unwrap();
    assert_eq!(tokens.remembered_count(), 0);
    let refused = tokens.authenticate(&headers(&revoked)).await.unwrap_err();
    assert!(matches!(refused, AuthError::Revoked { .. }), "{refused:?}");
    assert!(
        tokens
            .authenticate(&headers(&kept))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        tokens.remembered_count(),
        1,
        "only the live token is remembered"
    );
}

/// A command the rules refuse, and what it must come to.
struct Refusal {
    why: &'static str,
    who: &'static str,
    op: &'static str,
    data: Value,
    options: Recorded,
    expected: Outcome,
}

fn refusal(
    why: &'static str,
    who: &'static str,
    op: &'static str,
    data: Value,
    expected: Outcome,
) -> Refusal {
    Refusal {
        why,
        who,
        op,
        data,
        options: Recorded::default(),
        expected,
    }
}

/// Each pathway rule refuses with its code, and a refused command leaves the log as it was.
async fn pathway_rules_refuse_and_write_nothing(db: TestDb) {
    let api = Api::start(db).await;
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let issued = api.prepare(Stage::Issued, A1, P1).await;
    let attended = api.prepare(Stage::Attended, A1, P1).await;
    let declined = api.prepare(Stage::Received, A1, P1).await;
    let reason = "person_declined";
    let decline = json!({ "referral_id": declined.referral, "reason": reason });
    api.write(A1, "referralDecline", decline).await;
    let closed = api.prepare(Stage::Accepted, A1, P1).await;
    let close = json!({ "referral_id": closed.referral, "reason": "goals_met" });
    api.write(A1, "caseClose", close).await;
    let completed = api.prepare(Stage::Taken, A1, P1).await;
    api.write(
        P1,
        "prescriptionComplete",
        prescription_only(completed.prescription),
    )
    .await;
    // A referral received two days ago.
    let past = Uuid::new_v4();
    let two_days_ago = Recorded {
        at: Some(now - day * 2),
        client_id: None,
    };
    api.write_with(A1, "referralReceive", received(past, A1), two_days_ago)
        .await;

    let mut unlisted_field = received(Uuid::new_v4(), A1);
    unlisted_field["name"] = json!("Ada");
    let mut nhs_number = received(Uuid::new_v4(), A1);
    nhs_number["referrer"] = json!("9434765919");
    let new_issue = |target: &Target, provider: &str| {
        api_support::issued(target.referral, Uuid::new_v4(), provider)
    };
    #[rustfmt::skip]
    let mut refusals = vec![
        refusal("a session on a prescription not yet accepted", P1, "sessionAttend",
            session(issued.prescription, Uuid::new_v4()), Outcome::Conflict),
        refusal("a declined referral takes no prescription", A1, "prescriptionIssue",
            new_issue(&declined, P1), Outcome::Conflict),
        refusal("a declined referral cannot be accepted", A1, "referralAccept",
            referral_only(declined.referral), Outcome::Conflict),
        refusal("a closed case takes no prescription", A1, "prescriptionIssue",
            new_issue(&closed, P1), Outcome::Conflict),
        refusal("a completed prescription takes no session", P1, "sessionAttend",
            session(completed.prescription, Uuid::new_v4()), Outcome::Conflict),
        refusal("the same session attended twice", P1, "sessionAttend",
            session(attended.prescription, attended.session), Outcome::Conflict),
        refusal("a session missed after it was attended", P1, "sessionMiss",
            json!({ "prescription_id": attended.prescription, "session_id": attended.session, "notice_given": true }),
            Outcome::Conflict),
        refusal("a retraction of a session never recorded", P1, "sessionRetract",
            retracted(attended.prescription, Uuid::new_v4()), BAD),
        refusal("a referral id received twice", A1, "referralReceive",
            received(attended.referral, A1), Outcome::Conflict),
        refusal("a prescription id issued twice", A1, "prescriptionIssue",
            api_support::issued(attended.referral, attended.prescription, P1), Outcome::Conflict),
        refusal("a step on a referral never received", A1, "referralAccept",
            referral_only(Uuid::new_v4()), BAD),
        refusal("a prescription to an unregistered provider", A1, "prescriptionIssue",
            new_issue(&attended, "VCS99"), BAD),
        refusal("a prescription to an anchor", A1, "prescriptionIssue",
            new_issue(&attended, A2), BAD),
        refusal("a redirection to an unregistered service", A1, "referralRedirect",
            json!({ "referral_id": past, "to_organisation": "NOBODY1", "reason": "out_of_area" }), BAD),
        refusal("a payload with a field the catalogue does not list", A1, "referralReceive",
            unlisted_field, BAD),
        refusal("a payload holding an NHS number", A1, "referralReceive", nhs_number, BAD),
        refusal("a payload that is not an object", A1, "referralAccept", json!("accept it"), BAD),
        refusal("a payload missing a field", A1, "referralDecline", referral_only(past), BAD),
    ];
    refusals.push(Refusal {
        options: Recorded {
            at: Some(now + chrono::Duration::hours(1)),
            client_id: None,
        },
        ..refusal(
            "a referral received in the future",
            A1,
            "referralReceive",
            received(Uuid::new_v4(), A1),
            BAD,
        )
    });
    refusals.push(Refusal {
        options: Recorded {
            at: Some(now + chrono::Duration::minutes(5)),
            client_id: None,
        },
        ..refusal(
            "a session attended in the future",
            P1,
            "sessionAttend",
            session(attended.prescription, Uuid::new_v4()),
            BAD,
        )
    });
    refusals.push(Refusal {
        options: Recorded {
            at: Some(now - day * 3),
            client_id: None,
        },
        ..refusal(
            "an acceptance before the referral was received",
            A1,
            "referralAccept",
            referral_only(past),
            BAD,
        )
    });

    for refusal in refusals {
        let head = api.head().await;
        let reply = api
            .mutate_with(refusal.who, refusal.op, refusal.data, refusal.options)
            .await;
        let why = refusal.why;
        assert_eq!(reply.outcome(), refusal.expected, "{why}: {reply:?}");
        assert_eq!(reply.status, StatusCode::OK, "{why}: {reply:?}");
        assert!(reply.body["data"].is_null(), "{why}: {reply:?}");
        assert!(reply.message().len() > 10, "{why}: say why: {reply:?}");
        assert_eq!(api.head().await, head, "{why}: the log moved");
        assert_eq!(
            api.events_after(head).await,
            0,
            "{why}: an event was written"
        );
    }

    // The same steps at a time the rules allow go through: the refusals were about the rule.
    let yesterday = Recorded {
        at: Some(now - day),
        client_id: None,
    };
    api.write_with(A1, "referralAccept", referral_only(past), yesterday)
        .await;
    let retraction = retracted(attended.prescription, attended.session);
    api.write(P1, "sessionRetract", retraction.clone()).await;
    let reply = api.mutate(P1, "sessionRetract", retraction).await;
    assert_eq!(
        reply.outcome(),
        BAD,
        "a retraction retracted again: {reply:?}"
    );
}

const JOURNEY: &str = "query($id: UUID!, $at: Int) { referral(id: $id, atLeast: $at) { \
    status steps { position type actorOrganisation prescriptionId } prescriptions { status sessionsAttended } } }";

/// A mutation's position, passed as `atLeast`, shows the write at once; a position the log
/// never reaches is refused with NOT_YET_FOLDED after the documented wait.
async fn a_write_reads_back_at_its_position(db: TestDb) {
    let api = Api::start(db).await;
    let target = api.prepare(Stage::Taken, A1, P1).await;
    let mut last = 0;
    for attended in 1..=10 {
        let reply = api
            .mutate(
                P1,
                "sessionAttend",
                session(target.prescription, Uuid::new_v4()),
            )
            .await;
        let position = Written::of(&reply, "sessionAttend").position;
        assert!(position > last, "positions rise: {position} after {last}");
        last = position;
        // Each of them reads it straight away: the provider that wrote it, the holder.
        for who in [P1, A1] {
            let variables = json!({ "id": target.referral, "at": position });
            let reply = api.gql(who, JOURNEY, variables).await;
            let journey = reply.data("referral");
            let step = journey["steps"].as_array().expect("steps").last().cloned();
            let step = step.expect("a step");
            assert_eq!(step["position"], json!(position), "{who}: {journey}");
            assert_eq!(step["type"], "session.attended", "{who}: {journey}");
            assert_eq!(step["actorOrganisation"], P1, "{who}: {journey}");
            let prescription = json!(target.prescription.to_string());
            assert_eq!(step["prescriptionId"], prescription, "{who}: {journey}");
            assert_eq!(
                journey["steps"][0]["prescriptionId"],
                json!(null),
                "{journey}"
            );
            let sessions = &journey["prescriptions"][0]["sessionsAttended"];
            assert_eq!(sessions, &json!(attended), "{who}: {journey}");
        }
    }
    // A new referral is listed at once too.
    let referral = Uuid::new_v4();
    let position = api
        .write(A1, "referralReceive", received(referral, A1))
        .await;
    let query = "query($at: Int) { referrals(atLeast: $at, first: 500) { referralId } }";
    let reply = api.gql(A1, query, json!({ "at": position })).await;
    let listed = reply.data("referrals").to_string();
    assert!(listed.contains(&referral.to_string()), "{listed}");
    let reply = api.gql(A1, "{ position }", json!({})).await;
    assert!(
        reply.data("position").as_u64() >= Some(position),
        "{reply:?}"
    );

    // Only this one case waits out READ_YOUR_WRITES_WAIT_MS: it is slow by design.
    let wait = Duration::from_millis(followfund::runner::READ_YOUR_WRITES_WAIT_MS);
    let beyond = api.head().await + 1_000_000;
    let started = Instant::now();
    let variables = json!({ "id": target.referral, "at": beyond });
    let reply = api.gql(A1, JOURNEY, variables).await;
    let waited = started.elapsed();
    assert_eq!(reply.code(), Some("NOT_YET_FOLDED"), "{reply:?}");
    assert!(reply.message().len() > 10, "{reply:?}");
    assert!(reply.body["data"].is_null(), "{reply:?}");
    assert!(
        waited >= wait.mul_f64(0.9),
        "gave up after {waited:?}, before the {wait:?} it promises"
    );
}

/// The same command with the same client id, sent 100 times at once, is written once and
/// answered with that one position every time; the key reused for another command is refused.
async fn a_client_id_records_once_under_concurrency(db: TestDb) {
    let api = Arc::new(Api::start(db).await);
    // The race between retries is narrow: a few rounds catch it far more often than one.
    let mut last = None;
    for _ in 0..IDEMPOTENCY_ROUNDS {
        last = Some(receive_once(&api).await);
        attend_once(&api).await;
    }
    let (referral, key, data, first) = last.expect("a round");

    // Sent again later, it is answered, not written.
    let options = options_of(key);
    let reply = api.mutate_with(A1, "referralReceive", data, options).await;
    let again = Written::of(&reply, "referralReceive");
    let expected = Written {
        written: false,
        ..first
    };
    assert_eq!(again, expected);

    // The key with another payload, or another operation, is a CONFLICT and writes nothing.
    let head = api.head().await;
    let other_person = received(referral, A1);
    let reply = api
        .mutate_with(A1, "referralReceive", other_person, options)
        .await;
    assert_eq!(reply.outcome(), Outcome::Conflict, "{reply:?}");
    let accept = referral_only(referral);
    let reply = api.mutate_with(A1, "referralAccept", accept, options).await;
    assert_eq!(reply.outcome(), Outcome::Conflict, "{reply:?}");
    assert_eq!(api.head().await, head);

    // Keys are per organisation: A2 may use the same one for its own referral.
    let own = received(Uuid::new_v4(), A2);
    let position = api.write_with(A2, "referralReceive", own, options).await;
    assert_eq!(position, head + 1);
}

/// Rounds of concurrent retries per kind of command.
const IDEMPOTENCY_ROUNDS: usize = 5;

/// A new referral received under one client id from many tasks at once: its stream holds one
/// event. Returns the referral, the key, the payload and the answer.
async fn receive_once(api: &Arc<Api>) -> (Uuid, Uuid, Value, Written) {
    let referral = Uuid::new_v4();
    let key = Uuid::new_v4();
    let options = Recorded {
        at: Some(Utc::now() - chrono::Duration::minutes(1)),
        client_id: Some(key),
    };
    let data = received(referral, A1);
    let replies = send_concurrently(api, A1, "referralReceive", &data, options).await;
    let first = once_written(&replies, "referralReceive");
    assert_eq!(api.steps(referral).await, Some(1));
    let stream = format!("referral-{referral}");
    let query = "query($name: String!) { stream(name: $name) { eventId } }";
    let reply = api.gql(X1, query, json!({ "name": stream })).await;
    let expected = json!([{ "eventId": first.event_id }]);
    assert_eq!(reply.data("stream"), &expected);
    (referral, key, data, first)
}

/// A step on an existing stream, the same way: one attendance is counted.
async fn attend_once(api: &Arc<Api>) {
    let target = api.prepare(Stage::Taken, A1, P1).await;
    let options = options_of(Uuid::new_v4());
    let attend = session(target.prescription, Uuid::new_v4());
    let replies = send_concurrently(api, P1, "sessionAttend", &attend, options).await;
    once_written(&replies, "sessionAttend");
    let head = api.head().await;
    let journey = api.journey(target.referral, head).await.expect("a journey");
    let steps = journey["steps"].as_array().map(Vec::len);
    assert_eq!(steps, Some(target.steps + 1), "{journey}");
    assert_eq!(journey["prescriptions"][0]["sessionsAttended"], 1);
}

fn options_of(client_id: Uuid) -> Recorded {
    Recorded {
        at: None,
        client_id: Some(client_id),
    }
}

/// Requests sent this many times at once, each from its own task.
const CONCURRENT_REQUESTS: usize = 100;

async fn send_concurrently(
    api: &Arc<Api>,
    who: &'static str,
    op: &'static str,
    data: &Value,
    options: Recorded,
) -> Vec<api_support::Reply> {
    let tasks = (0..CONCURRENT_REQUESTS).map(|_| {
        let (api, data) = (Arc::clone(api), data.clone());
        tokio::spawn(async move { api.mutate_with(who, op, data, options).await })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("a request task"))
        .collect()
}

/// Every reply succeeded with the same event at the same position, and exactly one wrote it.
fn once_written(replies: &[api_support::Reply], op: &str) -> Written {
    let refused: Vec<String> = replies
        .iter()
        .filter(|reply| reply.outcome() != OK)
        .map(|reply| format!("{:?}: {}", reply.outcome(), reply.message()))
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {} retries with one client id were refused, for example: {}",
        refused.len(),
        replies.len(),
        refused[0]
    );
    let answers: Vec<Written> = replies.iter().map(|reply| Written::of(reply, op)).collect();
    let writers = answers.iter().filter(|answer| answer.written).count();
    assert_eq!(writers, 1, "{writers} of the retries wrote");
    let first = answers[0].clone();
    for answer in &answers {
        assert_eq!(
            (answer.position, &answer.event_id),
            (first.position, &first.event_id)
        );
    }
    first
}

/// Broken requests get a 400, a 413 or a 200 with errors, never a 5xx, always with a message
/// saying what is wrong; the server keeps serving afterwards.
async fn malformed_requests_get_clear_errors_and_the_server_stays_up(db: TestDb) {
    let mut api = Api::start(db).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid syntax", body(json!({ "query": "{ me { role " }))),
        (
            "a string for an Int variable",
            body(json!({
                "query": "query($first: Int) { events(first: $first) { edges { cursor } } }",
                "variables": { "first": "x" },
            })),
        ),
        (
            "a string for an Int literal",
            body(json!({ "query": r#"{ events(first: "x") { edges { cursor } } }"# })),
        ),
        (
            "an unknown field",
            body(json!({ "query": "{ me { shoeSize } }" })),
        ),
        (
            "an unknown root field",
            body(json!({ "query": "{ everything }" })),
        ),
        (
            "a clientId that is not a UUID",
            body(json!({
                "query": mutation_text("referralAccept"),
                "variables": { "data": referral_only(Uuid::new_v4()), "key": "not-a-uuid" },
            })),
        ),
        (
            "an occurredAt that is not a date",
            body(json!({
                "query": mutation_text("referralAccept"),
                "variables": { "data": referral_only(Uuid::new_v4()), "at": "last Tuesday" },
            })),
        ),
        (
            "a missing required variable",
            body(json!({ "query": mutation_text("referralAccept") })),
        ),
        (
            "40 levels of ofType",
            body(json!({ "query": nested_type_query(40) })),
        ),
        (
            "400 levels of ofType",
            body(json!({ "query": nested_type_query(400) })),
        ),
        (
            "fragments that spread each other",
            body(json!({
                "query": "fragment A on Query { me { role } ...B } fragment B on Query { ...A } { ...A }",
            })),
        ),
        ("5,000 aliases", body(json!({ "query": aliases(5_000) }))),
        ("an empty query", body(json!({ "query": "" }))),
        (
            "a batch array",
            body(json!([{ "query": "{ me { role } }" }])),
        ),
        ("bytes that are not UTF-8", vec![0xff, 0xfe, 0x7b, 0x00]),
    ];
    for (what, bytes) in cases {
        let started = Instant::now();
        let reply = api.post_raw(bytes).await;
        let status = reply.status;
        assert!(
            !status.is_server_error(),
            "{what}: HTTP {status}: {reply:?}"
        );
        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE
            ]
            .contains(&status),
            "{what}: HTTP {status}: {reply:?}"
        );
        let refused = reply.has_errors() || status != StatusCode::OK;
        assert!(refused, "{what}: answered as if well formed: {reply:?}");
        assert!(
            !reply.message().trim().is_empty(),
            "{what}: an empty message"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert!(api.healthy().await, "{what}: the server stopped answering");
    }
    if let Some(reply) = api.post_oversized(huge_body(3 << 20)).await {
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "a 3 MB body: {reply:?}"
        );
    }
    assert!(
        api.healthy().await,
        "a 3 MB body: the server stopped answering"
    );
    let reply = api.gql(X1, "{ me { role } }", json!({})).await;
    assert_eq!(reply.data("me")["role"], "AUDITOR");
}

fn body(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).expect("JSON")
}

/// `__type(name: "Query") { ofType { ofType ... } }`, `levels` deep.
fn nested_type_query(levels: usize) -> String {
    let open = "ofType { name ".repeat(levels);
    let close = "} ".repeat(levels);
    format!(r#"{{ __type(name: "Query") {{ name {open}{close}}} }}"#)
}

/// `{ a0: me { role } a1: me { role } ... }`.
fn aliases(count: usize) -> String {
    let fields: String = (0..count)
        .map(|i| format!("a{i}: me {{ role }} "))
        .collect();
    format!("{{ {fields}}}")
}

/// A well-formed request padded with a comment to `bytes`.
fn huge_body(bytes: usize) -> Vec<u8> {
    let query = format!("{{ me {{ role }} }} #{}", "x".repeat(bytes));
    body(json!({ "query": query }))
}
