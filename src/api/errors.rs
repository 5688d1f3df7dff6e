//! GraphQL errors with a stable `extensions.code` and a message a person can act on.

use async_graphql::{Error, ErrorExtensions};

fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, extensions| extensions.set("code", code))
}

/// The request is not well formed or names something invalid.
pub fn bad_input(message: impl Into<String>) -> Error {
    coded("BAD_INPUT", message)
}

/// The caller's scope does not reach this.
pub fn forbidden(message: impl Into<String>) -> Error {
    coded("FORBIDDEN", message)
}

/// Nothing by that name or id.
pub fn not_found(message: impl Into<String>) -> Error {
    coded("NOT_FOUND", message)
}

/// The request's stated versions no longer hold.
pub fn conflict(message: impl Into<String>) -> Error {
    coded("CONFLICT", message)
}

/// The read models have not reached the position asked for in time.
pub fn not_yet(message: impl Into<String>) -> Error {
    coded("NOT_YET_FOLDED", message)
}

/// No token, or one that is unknown or revoked.
pub fn unauthenticated() -> Error {
    coded(
        "UNAUTHENTICATED",
        "this needs a bearer token: send `Authorization: Bearer <token>` (an administrator issues them with `followfund token create`)",
    )
}
