//! Administration from the command line: registering organisations and issuing tokens.

use chrono::Utc;
use followfund_contracts::{Event, Nation, Role};
use serde_json::json;
use uuid::Uuid;

use crate::api::auth;
use crate::store::{Actor, EventError, NewEvent, Store, StoreError, TokenRecord};

/// Why an administrative command was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The organisation is not registered.
    #[error("organisation `{0}` is not registered: add it first with `followfund org add`")]
    UnknownOrganisation(String),
    /// The organisation is registered in another role.
    #[error(
        "organisation `{organisation}` is registered as {registered}, so it cannot hold a {asked} token"
    )]
    RoleMismatch {
        /// The organisation.
        organisation: String,
        /// Its registered role.
        registered: Role,
        /// The role asked for.
        asked: Role,
    },
    /// The registration is not a valid event.
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stream holding an organisation's registrations.
pub fn organisation_stream(code: &str) -> String {
    format!("organisation-{code}")
}

/// Registers (or re-registers, replacing name, role, nation and parent) an organisation.
pub async fn organisation_add(
    store: &Store,
    code: &str,
    name: &str,
    role: Role,
    nation: Nation,
    parent: Option<&str>,
) -> Result<u64, AdminError> {
    let data = json!({ "organisation": code, "name": name, "role": role, "nation": nation, "parent": parent });
    let stream = organisation_stream(code);
    let event = NewEvent::from_parts(
        Uuid::now_v7(),
        stream,
        "organisation.registered",
        1,
        data,
        Actor::admin_cli(),
        Utc::now(),
    )?;
    let appended = store.append(vec![event], vec![]).await?;
    Ok(appended.positions[0])
}

/// The role an organisation was last registered in.
pub async fn organisation_role(store: &Store, code: &str) -> Result<Role, AdminError> {
    let events = store.read_stream(&organisation_stream(code), 1).await?;
    let registered = events.iter().rev().find_map(|event| match event.decode() {
        Ok(Event::OrganisationRegistered(registration)) => Some(registration.role),
        _ => None,
    });
    registered.ok_or_else(|| AdminError::UnknownOrganisation(code.to_string()))
}

/// Issues a token for a registered organisation in its registered role.
pub async fn token_create(
    store: &Store,
    code: &str,
    role: Role,
) -> Result<(String, TokenRecord), AdminError> {
    let registered = organisation_role(store, code).await?;
    if registered != role {
        return Err(AdminError::RoleMismatch {
            organisation: code.to_string(),
            registered,
            asked: role,
        });
    }
    Ok(auth::issue(store, code, role).await?)
}

/// What publishing a terms file did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Positions of the events, in the file's order.
    pub positions: Vec<u64>,
    /// False when the same file had been published before: nothing new was written.
    pub written: bool,
}

/// Why a terms file was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The file itself is invalid.
    #[error(transparent)]
    Terms(#[from] followfund_contracts::terms::TermsError),
    /// A table names an organisation that is not registered in the role it needs.
    #[error("line {line}: {field}: {message}")]
    Organisation {
        /// The table's line.
        line: usize,
        /// The field naming the organisation.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An amendment for an agreement that does not exist, or a version out of sequence.
    #[error("line {line}: {message}")]
    Sequence {
        /// The table's line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The administration layer refused.
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Events published from terms files get ids derived from their stream and version, so that
/// publishing the same file twice writes it once.
const TERMS_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2d1e_9b7a_40c3_4f6e_8a15_7c2b_e9d0_3f41);

/// Publishes a terms file: every table is checked, and then all of them are appended at once.
pub async fn contracts_publish(store: &Store, text: &str) -> Result<Published, PublishError> {
    let terms = followfund_contracts::terms::read_terms(text)?;
    for publication in &terms.publications {
        check_parties(store, publication).await?;
    }
    let mut events = Vec::new();
    let mut expected: Vec<(String, crate::store::ExpectedVersion)> = Vec::new();
    let mut positions = Vec::new();
    let mut first_lines: Vec<(String, usize)> = Vec::new();
    for publication in &terms.publications {
        let event = terms_event(publication)?;
        // A file that has grown since it was last published: what is already in the log must
        // be unchanged, and only the rest is appended.
        if let Some(stored) = store
            .read_event(event.event_id())
            .await
            .map_err(AdminError::from)?
        {
            if stored.data != publication.event.encode() {
                let message = format!(
                    "{} version {} was published differently at position {}: published terms are not rewritten; publish an amendment instead",
                    publication.stream,
                    publication.version_before + 1,
                    stored.position
                );
                return Err(PublishError::Sequence {
                    line: publication.line,
                    message,
                });
            }
            positions.push(Some(stored.position));
            continue;
        }
        if !expected
            .iter()
            .any(|(stream, _)| stream == &publication.stream)
        {
            let before = match publication.version_before {
                0 => crate::store::ExpectedVersion::NoStream,
                n => crate::store::ExpectedVersion::Exact(n),
            };
            expected.push((publication.stream.clone(), before));
            first_lines.push((publication.stream.clone(), publication.line));
        }
        events.push(event);
        positions.push(None);
    }
    if events.is_empty() {
        let positions = positions.into_iter().flatten().collect();
        return Ok(Published {
            positions,
            written: false,
        });
    }
    let appended = store.append(events, expected).await.map_err(|error| match error {
        StoreError::Conflict { stream, actual, .. } => PublishError::Sequence {
            line: first_lines.iter().find(|(s, _)| *s == stream).map_or(1, |(_, line)| *line),
            message: format!("{stream} is at version {actual}: amendments follow the versions already published, one by one"),
        },
        other => PublishError::Admin(AdminError::Store(other)),
    })?;
    // Positions in the file's order: those already published, and the new ones in turn.
    let mut new_positions = appended.positions.into_iter();
    let positions = positions
        .into_iter()
        .map(|known| known.or_else(|| new_positions.next()));
    let positions = positions
        .collect::<Option<Vec<u64>>>()
        .expect("one position per new event");
    Ok(Published {
        positions,
        written: true,
    })
}

/// The event a publication appends, with an id derived from its stream and version.
fn terms_event(
    publication: &followfund_contracts::terms::Publication,
) -> Result<NewEvent, AdminError> {
    let version = publication.version_before + 1;
    let event_id = Uuid::new_v5(
        &TERMS_ID_NAMESPACE,
        format!("{}/{version}", publication.stream).as_bytes(),
    );
    let occurred_at = valid_time(&publication.event);
    let event = NewEvent::new(
        publication.stream.clone(),
        &publication.event,
        Actor::admin_cli(),
        occurred_at,
    )?;
    Ok(event.with_id(event_id))
}

/// A funding term's valid time is the day it takes effect. ARRS rules are dated when they are
/// published, because a revision may be backdated and the log must show when it became known.
fn valid_time(event: &Event) -> chrono::DateTime<chrono::Utc> {
    let takes_effect = match event {
        Event::BudgetAllocated(budget) => budget.financial_year.first_day(),
        Event::AgreementSigned(agreement) => agreement.valid_from,
        Event::AgreementAmended(amendment) => amendment.effective_from,
        Event::CapacityGrantAwarded(grant) => grant.financial_year.first_day(),
        Event::ArrsRulesPublished(_) => return chrono::Utc::now(),
        Event::SibContractPublished(contract) => contract.starts_on,
        other => unreachable!(
            "terms files publish funding terms, ARRS rules and outcome contracts only, not {}",
            other.type_name()
        ),
    };
    takes_effect
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}

/// The organisations a table names must be registered in the roles it gives them; a provider
/// may be the anchor itself (self-delivery).
async fn check_parties(
    store: &Store,
    publication: &followfund_contracts::terms::Publication,
) -> Result<(), PublishError> {
    let line = publication.line;
    let parties: Vec<(&'static str, &str, &[Role])> = match &publication.event {
        Event::BudgetAllocated(b) => vec![
            (
                "commissioner",
                b.commissioner.as_str(),
                &[Role::Commissioner],
            ),
            ("anchor", b.anchor.as_str(), &[Role::Anchor]),
        ],
        Event::AgreementSigned(a) => vec![
            ("anchor", a.anchor.as_str(), &[Role::Anchor]),
            (
                "provider",
                a.provider.as_str(),
                &[Role::Provider, Role::Anchor],
            ),
        ],
        Event::CapacityGrantAwarded(g) => vec![
            ("anchor", g.anchor.as_str(), &[Role::Anchor]),
            ("provider", g.provider.as_str(), &[Role::Provider]),
        ],
        Event::SibContractPublished(c) => {
            let mut parties: Vec<(&'static str, &str, &[Role])> = vec![
                ("provider", c.provider.as_str(), &[Role::Anchor, Role::Pcn]),
                ("verifier", c.verifier.as_str(), &[Role::Verifier]),
            ];
            for payer in &c.payers {
                parties.push((
                    "payers",
                    payer.payer.as_str(),
                    &[Role::Commissioner, Role::Anchor],
                ));
            }
            for investor in &c.investors {
                parties.push(("investors", investor.investor.as_str(), &[Role::Investor]));
            }
            parties
        }
        _ => Vec::new(),
    };
    for (field, code, roles) in parties {
        let role = match organisation_role(store, code).await {
            Ok(role) => role,
            Err(AdminError::UnknownOrganisation(_)) => {
                let message =
                    format!("{code} is not registered: add it first with `followfund org add`");
                return Err(PublishError::Organisation {
                    line,
                    field,
                    message,
                });
            }
            Err(other) => return Err(other.into()),
        };
        if !roles.contains(&role) {
            let message = format!("{code} is registered as {role}, not as {}", roles[0]);
            return Err(PublishError::Organisation {
                line,
                field,
                message,
            });
        }
    }
    if let Event::AgreementSigned(agreement) = &publication.event
        && agreement.provider != agreement.anchor
        && organisation_role(store, agreement.provider.as_str()).await? == Role::Anchor
    {
        let message = format!(
            "{} is an anchor: only an anchor's own agreement may name it as provider",
            agreement.provider.as_str()
        );
        return Err(PublishError::Organisation {
            line,
            field: "provider",
            message,
        });
    }
    Ok(())
}
