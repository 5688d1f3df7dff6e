//! Bearer tokens: issuing them, and turning the `Authorization` header into the organisation
//! and role a request acts for, remembering the tokens seen lately until one is revoked.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use chrono::Utc;
use followfund_contracts::Role;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::store::{Store, StoreError, TokenRecord};

/// Every token starts with this, so a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "ff_";

/// How often a server asks the store how many tokens are revoked.
pub const REVOCATION_POLL_MS: u64 = 200;
/// How long after the start of its last successful poll a server still answers from the tokens
/// it remembers. A token revoked by another process is refused within this plus one poll.
pub const REVOCATION_DELAY_MS: u64 = 1_000;
/// More remembered tokens than this and the server forgets them all and starts again.
const REMEMBERED_MAX: usize = 10_000;

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

/// The tokens a server has found good lately, so that a request does not wait on the store.
///
/// Looking every request's token up in the store put the database's reader pool in front of
/// queries the read models answer in a millisecond, and a stall there stalled them all. A poll
/// of how many tokens are revoked forgets every remembered token when that number changes;
/// when the polls stop succeeding the server looks each token up again.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    remembered: RwLock<Remembered>,
}

#[derive(Default)]
struct Remembered {
    /// How many tokens were revoked at the last successful poll; `None` before the first.
    revoked_count: Option<u64>,
    /// When that poll began.
    polled_at: Option<Instant>,
    principals: HashMap<[u8; 32], Principal>,
}

impl Tokens {
    /// Tokens checked against `store`, polled for revocations while any clone is alive.
    pub fn start(store: Store) -> Tokens {
        let tokens = Tokens::unpolled(store);
        tokio::spawn(poll(Arc::downgrade(&tokens.inner)));
        tokens
    }

    /// Tokens that are only polled when `refresh` is called.
    pub fn unpolled(store: Store) -> Tokens {
        let inner = Inner {
            store,
            remembered: RwLock::new(Remembered::default()),
        };
        Tokens {
            inner: Arc::new(inner),
        }
    }

    /// Asks the store how many tokens are revoked, and forgets every remembered token if that
    /// changed.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        let revoked_count = self.inner.store.tokens_revoked_count().await?;
        let mut remembered = self.inner.remembered.write().expect("tokens lock");
        if remembered.revoked_count != Some(revoked_count) {
            // Fewer than before is not something this service does (a database restored from
            // an older backup, say): the tokens are forgotten all the same.
            if remembered
                .revoked_count
                .is_some_and(|before| before > revoked_count)
            {
                tracing::warn!(
                    revoked_count,
                    "fewer tokens are revoked than at the last poll"
                );
            }
            remembered.revoked_count = Some(revoked_count);
            remembered.principals.clear();
        }
        remembered.polled_at = remembered.polled_at.max(Some(started));
        Ok(())
    }

    /// The principal a request's headers name; `None` when it carries no token at all.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let secret = value
            .strip_prefix("Bearer ")
            .ok_or(AuthError::Malformed)?
            .trim();
        let token_hash = hash(secret);
        let revoked_count = match self.recall(&token_hash) {
            Ok(principal) => return Ok(Some(principal)),
            Err(revoked_count) => revoked_count,
        };
        let principal = find(&self.inner.store, &token_hash).await?;
        self.remember(token_hash, &principal, revoked_count);
        Ok(Some(principal))
    }

    /// The remembered principal of `token_hash` while the last poll is recent enough to trust;
    /// otherwise the revoked count a lookup in the store starts from, read under the same lock.
    fn recall(&self, token_hash: &[u8; 32]) -> Result<Principal, Option<u64>> {
        let remembered = self.inner.remembered.read().expect("tokens lock");
        let trusted = Duration::from_millis(REVOCATION_DELAY_MS);
        let fresh = remembered
            .polled_at
            .is_some_and(|polled_at| polled_at.elapsed() < trusted);
        match remembered.principals.get(token_hash) {
            Some(principal) if fresh => Ok(principal.clone()),
            _ => Err(remembered.revoked_count),
        }
    }

    /// Keeps a principal found when `revoked_count` were revoked, unless a poll has seen another
    /// count since: the lookup may then have read the token before its revocation.
    fn remember(&self, token_hash: [u8; 32], principal: &Principal, revoked_count: Option<u64>) {
        let mut remembered = self.inner.remembered.write().expect("tokens lock");
        if revoked_count.is_none() || remembered.revoked_count != revoked_count {
            return;
        }
        if remembered.principals.len() >= REMEMBERED_MAX {
            remembered.principals.clear();
        }
        remembered.principals.insert(token_hash, principal.clone());
    }

    /// How many tokens are remembered.
    pub fn remembered_count(&self) -> usize {
        let remembered = self.inner.remembered.read().expect("tokens lock");
        remembered.principals.len()
    }
}

/// Refreshes the tokens every `REVOCATION_POLL_MS` until the last clone is dropped.
async fn poll(inner: Weak<Inner>) {
    let mut interval = tokio::time::interval(Duration::from_millis(REVOCATION_POLL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match (Tokens { inner }).refresh().await {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "cannot poll for revoked tokens: looking every token up");
            }
            Err(_) => {}
        }
    }
}

/// The principal of the live token that hashes to `token_hash`.
async fn find(store: &Store, token_hash: &[u8; 32]) -> Result<Principal, AuthError> {
    let record = store
        .token_find(token_hash)
        .await?
        .ok_or(AuthError::Unknown)?;
    if let Some(revoked_at) = record.revoked_at {
        return Err(AuthError::Revoked { revoked_at });
    }
    let role = record.role.parse().map_err(|_| AuthError::Unknown)?;
    Ok(Principal {
        organisation: record.organisation,
        role,
    })
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}
