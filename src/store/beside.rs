//! Records kept beside the log, not in it: API tokens (credentials that must stay revocable)
//! and projection snapshots (derived state that can always be rebuilt from the log).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Reader, Store, StoreError};

/// A stored API token: who it speaks for, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's public id, used to revoke it.
    pub token_id: Uuid,
    /// The organisation it acts for.
    pub organisation: String,
    /// The role it acts in.
    pub role: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The most of a snapshot's state one row holds; a larger state is split across rows, since
/// both backends refuse a value over 1 GB.
pub const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024 * 1024;

/// A projection snapshot: serialised state including every event up to `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The version of the code that folded it.
    pub version: u32,
    /// The last position it includes.
    pub position: u64,
    /// The serialised state.
    pub state: Vec<u8>,
}

impl Store {
    /// Stores a new token under the SHA-256 of its secret.
    pub async fn token_insert(
        &self,
        record: &TokenRecord,
        token_hash: &[u8; 32],
    ) -> Result<(), StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_insert(record, token_hash).await,
            Reader::Postgres(log) => log.token_insert(record, token_hash).await,
        }
    }

    /// The token whose secret hashes to `token_hash`, revoked or not.
    pub async fn token_find(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_find(token_hash).await,
            Reader::Postgres(log) => log.token_find(token_hash).await,
        }
    }

    /// Revokes a token; false when no live token has that id.
    pub async fn token_revoke(
        &self,
        token_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.token_revoke(token_id, at).await,
            Reader::Postgres(log) => log.token_revoke(token_id, at).await,
        }
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.tokens().await,
            Reader::Postgres(log) => log.tokens().await,
        }
    }

    /// The stored snapshot called `name`, if any.
    pub async fn snapshot_load(&self, name: &str) -> Result<Option<Snapshot>, StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.snapshot_load(name).await,
            Reader::Postgres(log) => log.snapshot_load(name).await,
        }
    }

    /// Replaces the snapshot called `name`.
    pub async fn snapshot_save(&self, name: &str, snapshot: &Snapshot) -> Result<(), StoreError> {
        match &self.inner.reader {
            Reader::Sqlite(log) => log.snapshot_save(name, snapshot).await,
            Reader::Postgres(log) => log.snapshot_save(name, snapshot).await,
        }
    }
}

pub(super) fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Adds a snapshot's next chunk to its state, one at a time so that a state of many gigabytes is
/// held once, not twice; a missing chunk means the rows were altered.
pub(super) fn append_chunk(
    state: &mut Vec<u8>,
    bytes: Option<Vec<u8>>,
    chunk: i64,
    chunks: i64,
) -> Result<(), StoreError> {
    let Some(bytes) = bytes else {
        return Err(StoreError::Corrupt {
            position: 0,
            reason: format!("snapshot chunk {chunk} of {chunks} is missing"),
        });
    };
    if chunk == 0 {
        state.reserve_exact(bytes.len() * chunks as usize);
    }
    state.extend_from_slice(&bytes);
    Ok(())
}
