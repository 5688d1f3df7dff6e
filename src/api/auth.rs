//! Bearer tokens: issuing them, and turning the `Authorization` header into the organisation
//! and role a request acts for.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use chrono::Utc;
use followfund_contracts::Role;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{Store, StoreError, TokenRecord};

/// Every token starts with this, so a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "ff_";

/// Who a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The organisation's ODS code or our own id.
    pub organisation: String,
    /// The role it acts in.
    pub role: Role,
}

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The header is not `Bearer <token>`.
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    /// No token matches.
    #[error(
        "this token is not known: ask an administrator for a token (`followfund token create`)"
    )]
    Unknown,
    /// The token was revoked.
    #[error("this token was revoked on {revoked_at}: ask an administrator for a new one")]
    Revoked {
        /// When.
        revoked_at: chrono::DateTime<Utc>,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new token: the secret to hand over once, and the record kept.
pub async fn issue(
    store: &Store,
    organisation: &str,
    role: Role,
) -> Result<(String, TokenRecord), StoreError> {
    // Two random UUIDs give 244 random bits.
    let secret = format!(
        "{TOKEN_PREFIX}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let record = TokenRecord {
        token_id: Uuid::now_v7(),
        organisation: organisation.to_string(),
        role: role.as_str().to_string(),
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.token_insert(&record, &hash(&secret)).await?;
    Ok((secret, record))
}

/// The principal a request's headers name; `None` when it carries no token at all.
pub async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
) -> Result<Option<Principal>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let secret = value
        .strip_prefix("Bearer ")
        .ok_or(AuthError::Malformed)?
        .trim();
    let record = store
        .token_find(&hash(secret))
        .await?
        .ok_or(AuthError::Unknown)?;
    if let Some(revoked_at) = record.revoked_at {
        return Err(AuthError::Revoked { revoked_at });
    }
    let role = record.role.parse().map_err(|_| AuthError::Unknown)?;
    Ok(Some(Principal {
        organisation: record.organisation,
        role,
    }))
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}
