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
