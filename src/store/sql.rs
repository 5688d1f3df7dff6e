//! What the SQL backends share: the column lists, the queries spelled the same in both, and
//! conversions between the log's unsigned numbers and SQL's signed ones.

use super::StoreError;

/// Every column of `events`, in the order rows are read and written.
pub const COLUMNS: &str = "position, event_id, stream, stream_version, event_type, schema_version, \
    occurred_at_us, recorded_at_us, actor_organisation, actor_role, actor_user, correlation_id, \
    causation_id, data, prev_hash, hash";

/// The columns of `events` a replay folds, in the order `FoldEvent`s are read.
pub const FOLD_COLUMNS: &str = "position, event_type, schema_version, occurred_at_us, data";

/// How many API tokens are revoked: it only grows, so servers poll it to learn of revocations.
pub const TOKENS_REVOKED_COUNT: &str =
    "SELECT COUNT(*) FROM api_tokens WHERE revoked_at_us IS NOT NULL";

pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).expect("positions and versions stay below 2^63")
}

/// A stored count, position or version; a negative one can only come from an altered row, and
/// reads as 0 so that `verify` reports the break.
pub fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub fn corrupt(position: i64, reason: &str) -> StoreError {
    StoreError::Corrupt {
        position: to_u64(position),
        reason: reason.to_string(),
    }
}
