//! GraphQL over HTTP: reading a request from GET or POST and writing the response with the
//! media type and status code the GraphQL-over-HTTP specification asks for.
//!
//! Pure request/response logic: no I/O, no schema, no authentication. [`parse`] turns an HTTP
//! request into an `async_graphql::Request` and the negotiated [`Format`], or into the error
//! response the specification asks for; [`render`] writes an executed response.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Extensions, Variables};
use axum::body::Bytes;
use axum::extract::Query;
use axum::http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The media type the specification prefers: status codes follow the outcome.
const MEDIA_GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// The legacy media type: 200 for every well-formed request.
const MEDIA_JSON: &str = "application/json";

/// The media type a response is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/graphql-response+json`: status codes follow the outcome.
    GraphqlResponseJson,
    /// `application/json`: always 200 once a request is well formed.
    Json,
}

impl Format {
    fn content_type(self) -> HeaderValue {
        match self {
            Format::GraphqlResponseJson => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
            Format::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// Why an HTTP request is not a well-formed GraphQL-over-HTTP request. Each message tells the
/// client what to send instead.
#[derive(Debug, PartialEq, thiserror::Error)]
enum HttpRejection {
    #[error(
        "the Accept header allows neither application/graphql-response+json nor application/json: accept one of them"
    )]
    NotAcceptable,
    #[error("only GET and POST are served at /graphql: send the request with POST")]
    MethodNotAllowed,
    #[error("a POST needs `Content-Type: application/json`: send the request as a JSON object")]
    ContentTypeMissing,
    #[error("Content-Type `{found}` is not supported: send `application/json` encoded as UTF-8")]
    ContentTypeUnsupported { found: String },
    #[error(
        r#"the request body is empty: send a JSON object such as {{"query": "{{ __typename }}"}}"#
    )]
    BodyEmpty,
    #[error(
        "the request body is not valid JSON ({detail}): send a JSON object with a `query` string"
    )]
    BodyNotJson { detail: String },
    #[error("the request body is {found}: send a JSON object with a `query` string")]
    BodyNotObject { found: &'static str },
    #[error("the URL's query string cannot be read: URL-encode the `query` parameter")]
    QueryStringMalformed,
    #[error("the `{name}` parameter is given more than once: give it once")]
    ParameterRepeated { name: String },
    #[error("the `query` parameter is missing: send the GraphQL document as a string in `query`")]
    QueryMissing,
    #[error("the `{name}` parameter is {found}: send {expected}")]
    ParameterWrongType {
        name: &'static str,
        found: &'static str,
        expected: &'static str,
    },
    #[error("the `{name}` parameter is not valid JSON ({detail}): send a URL-encoded JSON object")]
    ParameterNotJson { name: &'static str, detail: String },
    #[error("a {operation} cannot be sent with GET, which is for queries only: send it with POST")]
    OperationNotAllowedOverGet { operation: &'static str },
}

impl HttpRejection {
    fn status(&self) -> StatusCode {
        match self {
            HttpRejection::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            HttpRejection::MethodNotAllowed | HttpRejection::OperationNotAllowedOverGet { .. } => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            HttpRejection::ContentTypeMissing | HttpRejection::ContentTypeUnsupported { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A stable `extensions.code`, so clients can branch without reading the message.
    fn code(&self) -> &'static str {
        match self {
            HttpRejection::NotAcceptable => "NOT_ACCEPTABLE",
            HttpRejection::MethodNotAllowed | HttpRejection::OperationNotAllowedOverGet { .. } => {
                "METHOD_NOT_ALLOWED"
            }
            HttpRejection::ContentTypeMissing | HttpRejection::ContentTypeUnsupported { .. } => {
                "UNSUPPORTED_MEDIA_TYPE"
            }
            _ => "BAD_REQUEST",
        }
    }

    fn into_response(self, format: Format) -> Response {
        let mut response = error_response(self.status(), format, self.code(), &self.to_string());
        // RFC 9110 requires a 405 to name the methods that would have worked.
        let allow = match self {
            HttpRejection::MethodNotAllowed => Some("GET, POST"),
            HttpRejection::OperationNotAllowedOverGet { .. } => Some("POST"),
            _ => None,
        };
        if let Some(allow) = allow {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// Reads a GraphQL request, or answers with the error response the specification asks for.
// The error is the finished response the handler returns as is; boxing it would buy nothing.
#[allow(clippy::result_large_err)]
pub fn parse(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<(async_graphql::Request, Format), Response> {
    // A client that accepts neither media type gets plain JSON: it has to be told something.
    let format = negotiate(headers).map_err(|rejection| rejection.into_response(Format::Json))?;
    let request = match *method {
        // axum routes HEAD to the GET handler; it is a GET without the body.
        Method::GET | Method::HEAD => read_get(query),
        Method::POST => read_post(headers, &body),
        _ => Err(HttpRejection::MethodNotAllowed),
    };
    let request = request.map_err(|rejection| rejection.into_response(format))?;
    Ok((request, format))
}

/// Writes a GraphQL response.
pub fn render(mut response: async_graphql::Response, format: Format) -> Response {
    let request_error = is_request_error(&response);
    if request_error {
        mark_bad_input(&mut response);
    }
    let status = match format {
        Format::GraphqlResponseJson if request_error => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let body = match response_body(&response, request_error) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a GraphQL response could not be serialized");
            let message = "the response could not be written: this is a fault in the service";
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format,
                "INTERNAL",
                message,
            );
        }
    };
    let mut http = (status, [(CONTENT_TYPE, format.content_type())], body).into_response();
    let cache_control = response.cache_control.value();
    if let Some(value) = cache_control.filter(|_| response.is_ok())
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        http.headers_mut().insert(CACHE_CONTROL, value);
    }
    http.headers_mut().extend(response.http_headers);
    http
}

/// Errors in the request itself (syntax, unknown fields, wrong variable types, depth and
/// complexity limits) carry `BAD_INPUT` like every other refusal the caller must mend.
fn mark_bad_input(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_INPUT");
        }
    }
}

/// A GraphQL-shaped error response, `{"errors":[{"message", "extensions":{"code"}}]}`, for
/// failures outside execution (such as authentication) that must still read as GraphQL.
pub fn error_response(status: StatusCode, format: Format, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(CONTENT_TYPE, format.content_type())],
        body.to_string(),
    )
        .into_response()
}

/// Whether the request failed before execution (syntax, validation, variable coercion, unknown
/// operation). async-graphql answers those with `data` null and errors, which is also what a
/// field error propagating to the root looks like; but field errors carry a `path` and request
/// errors never do, so the path tells them apart.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// The body as JSON text. The GraphQL specification says `data` is absent, not null, when the
/// request failed before execution.
fn response_body(
    response: &async_graphql::Response,
    request_error: bool,
) -> serde_json::Result<String> {
    // An answer is written straight from the executed response: going through a
    // `serde_json::Value` on the way copied a 50-line statement's 160 KiB tree once more.
    if !request_error {
        return serde_json::to_string(response);
    }
    let mut body = serde_json::to_value(response)?;
    if let Some(fields) = body.as_object_mut() {
        fields.remove("data");
    }
    serde_json::to_string(&body)
}

/// How much a client wants one of our media types, by the most specific Accept range matching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Preference {
    /// The `q` parameter in thousandths, so preferences compare exactly.
    quality_per_mille: u16,
    /// 2 for the exact type, 1 for `application/*`, 0 for `*/*`.
    specificity: u8,
}

/// Picks the response media type from the Accept header.
fn negotiate(headers: &HeaderMap) -> Result<Format, HttpRejection> {
    let ranges: Vec<(String, u16)> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(media_range)
        .collect();
    // No Accept header: the specification lets the server choose; legacy clients expect JSON.
    if ranges.is_empty() {
        return Ok(Format::Json);
    }
    let graphql = preference(&ranges, MEDIA_GRAPHQL_RESPONSE_JSON);
    let json = preference(&ranges, MEDIA_JSON);
    match (graphql, json) {
        (None, None) => Err(HttpRejection::NotAcceptable),
        (Some(_), None) => Ok(Format::GraphqlResponseJson),
        (None, Some(_)) => Ok(Format::Json),
        (Some(graphql), Some(json)) if graphql > json => Ok(Format::GraphqlResponseJson),
        (Some(graphql), Some(json)) if graphql < json => Ok(Format::Json),
        // Named equally: the specification prefers the new type. Reached by wildcard alone
        // (`*/*`): legacy clients and the audit expect application/json.
        (Some(graphql), Some(_)) if graphql.specificity == 2 => Ok(Format::GraphqlResponseJson),
        (Some(_), Some(_)) => Ok(Format::Json),
    }
}

/// One Accept range as its lower-case `type/subtype` and quality; `None` when unreadable.
fn media_range(range: &str) -> Option<(String, u16)> {
    let mut parts = range.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    if !essence.contains('/') {
        return None;
    }
    let mut quality_per_mille = 1000;
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            let quality: f32 = value.trim().parse().ok()?;
            quality_per_mille = (quality.clamp(0.0, 1.0) * 1000.0).round() as u16;
        }
    }
    Some((essence, quality_per_mille))
}

/// The preference for `media`, from the most specific range that matches it; `None` when no
/// range matches or the matching one has `q=0` (refused).
fn preference(ranges: &[(String, u16)], media: &str) -> Option<Preference> {
    let specificity = |range: &str| match range {
        _ if range == media => Some(2),
        "application/*" => Some(1),
        "*/*" => Some(0),
        _ => None,
    };
    let best = ranges
        .iter()
        .filter_map(|(range, quality_per_mille)| {
            let specificity = specificity(range)?;
            Some(Preference {
                quality_per_mille: *quality_per_mille,
                specificity,
            })
        })
        .max_by_key(|preference| preference.specificity)?;
    (best.quality_per_mille > 0).then_some(best)
}

/// The four request parameters, still as JSON, before their types are checked.
#[derive(Default)]
struct Params {
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
}

/// A POST: a JSON object in a UTF-8 `application/json` body.
fn read_post(headers: &HeaderMap, body: &Bytes) -> Result<async_graphql::Request, HttpRejection> {
    check_content_type(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpRejection::BodyEmpty);
    }
    let body: Value = serde_json::from_slice(body).map_err(|error| HttpRejection::BodyNotJson {
        detail: error.to_string(),
    })?;
    let Value::Object(mut fields) = body else {
        return Err(HttpRejection::BodyNotObject {
            found: json_kind(&body),
        });
    };
    request(Params {
        query: fields.remove("query"),
        operation_name: fields.remove("operationName"),
        variables: fields.remove("variables"),
        extensions: fields.remove("extensions"),
    })
}

/// Accepts `application/json` with no charset or with `charset=utf-8`, as the specification asks.
fn check_content_type(headers: &HeaderMap) -> Result<(), HttpRejection> {
    let value = headers
        .get(CONTENT_TYPE)
        .ok_or(HttpRejection::ContentTypeMissing)?;
    let found = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let mut parts = found.split(';');
    let essence_is_json = parts
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(MEDIA_JSON));
    let charset_is_utf8 = parts.all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    });
    if essence_is_json && charset_is_utf8 {
        Ok(())
    } else {
        Err(HttpRejection::ContentTypeUnsupported { found })
    }
}

/// A GET: URL-encoded parameters, `variables` and `extensions` as JSON text, queries only.
fn read_get(query_string: Option<&str>) -> Result<async_graphql::Request, HttpRejection> {
    let params = get_params(query_string.unwrap_or_default())?;
    let mut request = request(params)?;
    if let Some(operation) = operation_type(&mut request) {
        let operation = match operation {
            OperationType::Query => return Ok(request),
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        return Err(HttpRejection::OperationNotAllowedOverGet { operation });
    }
    // Unparsable, or no operation to select: execution reports it as a GraphQL error.
    Ok(request)
}

/// The parameters of a GET's query string; any others are ignored.
fn get_params(query_string: &str) -> Result<Params, HttpRejection> {
    let uri: Uri = format!("/?{query_string}")
        .parse()
        .map_err(|_| HttpRejection::QueryStringMalformed)?;
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|_| HttpRejection::QueryStringMalformed)?;
    let mut params = Params::default();
    for (name, text) in pairs {
        let (slot, value) = match name.as_str() {
            "query" => (&mut params.query, Value::String(text)),
            // An empty optional parameter is how form encoders write "absent".
            _ if text.is_empty() => continue,
            "operationName" => (&mut params.operation_name, Value::String(text)),
            "variables" => (&mut params.variables, json_param("variables", &text)?),
            "extensions" => (&mut params.extensions, json_param("extensions", &text)?),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(HttpRejection::ParameterRepeated { name });
        }
    }
    Ok(params)
}

fn json_param(name: &'static str, text: &str) -> Result<Value, HttpRejection> {
    serde_json::from_str(text).map_err(|error| HttpRejection::ParameterNotJson {
        name,
        detail: error.to_string(),
    })
}

/// Checks each parameter's type and builds the request; `null` counts as absent.
fn request(params: Params) -> Result<async_graphql::Request, HttpRejection> {
    let query = match params.query {
        None | Some(Value::Null) => return Err(HttpRejection::QueryMissing),
        Some(Value::String(query)) => query,
        Some(other) => return Err(wrong_type("query", &other, "a string")),
    };
    let mut request = async_graphql::Request::new(query);
    match params.operation_name {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(other) => return Err(wrong_type("operationName", &other, "a string or null")),
    }
    if let Some(variables) = object_param("variables", params.variables)? {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    if let Some(extensions) = object_param("extensions", params.extensions)? {
        request.extensions = serde_json::from_value::<Extensions>(Value::Object(extensions))
            .map_err(|error| HttpRejection::ParameterNotJson {
                name: "extensions",
                detail: error.to_string(),
            })?;
    }
    Ok(request)
}

fn object_param(
    name: &'static str,
    value: Option<Value>,
) -> Result<Option<Map<String, Value>>, HttpRejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) => Ok(Some(fields)),
        Some(other) => Err(wrong_type(name, &other, "a JSON object or null")),
    }
}

fn wrong_type(name: &'static str, found: &Value, expected: &'static str) -> HttpRejection {
    HttpRejection::ParameterWrongType {
        name,
        found: json_kind(found),
        expected,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The type of the operation the request selects, parsing the document once (execution reuses
/// the parse); `None` when it does not parse or names no single operation.
fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => operation,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()?
        }
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str())?,
        _ => return None,
    };
    Some(operation.node.ty)
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn post(
        pairs: &[(&'static str, &'static str)],
        body: &'static str,
    ) -> Result<(async_graphql::Request, Format), Response> {
        parse(
            &Method::POST,
            &headers(pairs),
            None,
            Bytes::from_static(body.as_bytes()),
        )
    }

    fn post_json(body: &'static str) -> Result<(async_graphql::Request, Format), Response> {
        post(&[("content-type", "application/json")], body)
    }

    fn get(
        accept: Option<&'static str>,
        query: &str,
    ) -> Result<(async_graphql::Request, Format), Response> {
        let pairs: Vec<_> = accept
            .into_iter()
            .map(|accept| ("accept", accept))
            .collect();
        parse(&Method::GET, &headers(&pairs), Some(query), Bytes::new())
    }

    fn rejected(result: Result<(async_graphql::Request, Format), Response>) -> Response {
        match result {
            Ok((request, _)) => panic!(
                "expected a rejection, got a request for {:?}",
                request.query
            ),
            Err(response) => response,
        }
    }

    fn accepted(
        result: Result<(async_graphql::Request, Format), Response>,
    ) -> (async_graphql::Request, Format) {
        match result {
            Ok(parsed) => parsed,
            Err(response) => panic!("expected a request, got {}", response.status()),
        }
    }

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("a JSON body")
    }

    fn content_type(response: &Response) -> &str {
        response.headers()[CONTENT_TYPE]
            .to_str()
            .expect("an ASCII content type")
    }

    /// Asserts the status and that the body is a GraphQL error naming `needle`.
    async fn assert_rejected(response: Response, status: StatusCode, needle: &str) {
        assert_eq!(response.status(), status);
        let body = body(response).await;
        let message = body["errors"][0]["message"]
            .as_str()
            .expect("an error message");
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
        assert!(body.get("data").is_none(), "a rejected request has no data");
    }

    fn format(accept: &'static str) -> Result<Format, HttpRejection> {
        negotiate(&headers(&[("accept", accept)]))
    }

    #[test]
    fn negotiation_defaults_to_json_without_accept() {
        assert_eq!(negotiate(&HeaderMap::new()), Ok(Format::Json));
        assert_eq!(format(""), Ok(Format::Json));
    }

    #[test]
    fn negotiation_serves_the_named_type() {
        assert_eq!(
            format("application/graphql-response+json"),
            Ok(Format::GraphqlResponseJson)
        );
        assert_eq!(format("application/json"), Ok(Format::Json));
        assert_eq!(format("Application/JSON; charset=utf-8"), Ok(Format::Json));
    }

    #[test]
    fn negotiation_serves_json_for_wildcards() {
        assert_eq!(format("*/*"), Ok(Format::Json));
        assert_eq!(format("application/*"), Ok(Format::Json));
        assert_eq!(
            format("text/html, application/xhtml+xml, */*;q=0.8"),
            Ok(Format::Json)
        );
    }

    #[test]
    fn negotiation_prefers_graphql_response_json_on_a_tie_between_named_types() {
        let both = "application/json, application/graphql-response+json";
        assert_eq!(format(both), Ok(Format::GraphqlResponseJson));
        assert_eq!(
            format("application/graphql-response+json, */*"),
            Ok(Format::GraphqlResponseJson)
        );
    }

    #[test]
    fn negotiation_follows_quality() {
        let json_first = "application/graphql-response+json;q=0.5, application/json";
        assert_eq!(format(json_first), Ok(Format::Json));
        let recommended = "application/graphql-response+json, application/json;q=0.9";
        assert_eq!(format(recommended), Ok(Format::GraphqlResponseJson));
        assert_eq!(
            format("application/json;q=0, */*"),
            Ok(Format::GraphqlResponseJson)
        );
        assert_eq!(
            format("application/graphql-response+json;q=0, */*"),
            Ok(Format::Json)
        );
    }

    #[test]
    fn negotiation_reads_every_accept_header() {
        let accepts = headers(&[
            ("accept", "text/html"),
            ("accept", "application/graphql-response+json"),
        ]);
        assert_eq!(negotiate(&accepts), Ok(Format::GraphqlResponseJson));
    }

    #[test]
    fn negotiation_refuses_other_types() {
        assert_eq!(format("text/html"), Err(HttpRejection::NotAcceptable));
        assert_eq!(
            format("application/json;q=0"),
            Err(HttpRejection::NotAcceptable)
        );
    }

    #[tokio::test]
    async fn unacceptable_accept_is_406_in_json() {
        let response = rejected(post(
            &[
                ("content-type", "application/json"),
                ("accept", "text/html"),
            ],
            "{}",
        ));
        assert_eq!(content_type(&response), "application/json; charset=utf-8");
        assert_rejected(response, StatusCode::NOT_ACCEPTABLE, "Accept").await;
    }

    #[test]
    fn post_reads_the_json_parameters() {
        let body = r#"{"query":"query Q($n: Int) { v }","operationName":"Q","variables":{"n":1},"extensions":{"e":true}}"#;
        let (request, format) = accepted(post_json(body));
        assert_eq!(format, Format::Json);
        assert_eq!(request.query, "query Q($n: Int) { v }");
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables.into_value().into_json().unwrap(),
            json!({ "n": 1 })
        );
        assert_eq!(
            request.extensions.0.get("e"),
            Some(&async_graphql::Value::Boolean(true))
        );
    }

    #[test]
    fn post_allows_null_optional_parameters_and_a_utf8_charset() {
        let body = r#"{"query":"{ v }","operationName":null,"variables":null,"extensions":null}"#;
        let charset = [("content-type", "application/json; charset=UTF-8")];
        let (request, _) = accepted(post(&charset, body));
        assert_eq!(request.operation_name, None);
        assert_eq!(
            request.variables.into_value().into_json().unwrap(),
            json!({})
        );
    }

    #[test]
    fn post_negotiates_the_response_format() {
        let pairs = [
            ("content-type", "application/json"),
            ("accept", "application/graphql-response+json"),
        ];
        let (_, format) = accepted(post(&pairs, r#"{"query":"{ v }"}"#));
        assert_eq!(format, Format::GraphqlResponseJson);
    }

    #[tokio::test]
    async fn post_without_content_type_is_415() {
        let response = rejected(post(&[], r#"{"query":"{ v }"}"#));
        assert_rejected(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type").await;
    }

    #[tokio::test]
    async fn post_with_another_content_type_or_charset_is_415() {
        for content_type in [
            "text/plain",
            "application/graphql",
            "application/json; charset=latin1",
        ] {
            let response = rejected(post(
                &[("content-type", content_type)],
                r#"{"query":"{ v }"}"#,
            ));
            assert_rejected(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, content_type).await;
        }
    }

    #[tokio::test]
    async fn post_with_an_empty_body_is_400() {
        assert_rejected(rejected(post_json("")), StatusCode::BAD_REQUEST, "empty").await;
    }

    #[tokio::test]
    async fn post_with_malformed_json_is_400_in_the_negotiated_format() {
        let pairs = [
            ("content-type", "application/json"),
            ("accept", "application/graphql-response+json"),
        ];
        let response = rejected(post(&pairs, r#"{ "not a JSON"#));
        assert_eq!(
            content_type(&response),
            "application/graphql-response+json; charset=utf-8"
        );
        assert_rejected(response, StatusCode::BAD_REQUEST, "not valid JSON").await;
    }

    #[tokio::test]
    async fn post_with_a_non_object_body_is_400() {
        assert_rejected(
            rejected(post_json(r#"["{ v }"]"#)),
            StatusCode::BAD_REQUEST,
            "an array",
        )
        .await;
    }

    #[tokio::test]
    async fn missing_or_null_query_is_400() {
        let missing = rejected(post_json(r#"{"notquery":"{ v }"}"#));
        assert_rejected(
            missing,
            StatusCode::BAD_REQUEST,
            "`query` parameter is missing",
        )
        .await;
        let null = rejected(post_json(r#"{"query":null}"#));
        assert_rejected(
            null,
            StatusCode::BAD_REQUEST,
            "`query` parameter is missing",
        )
        .await;
    }

    #[tokio::test]
    async fn non_string_query_is_400() {
        for (body, found) in [
            (r#"{"query":{"obj":"ect"}}"#, "an object"),
            (r#"{"query":0}"#, "a number"),
            (r#"{"query":false}"#, "a boolean"),
            (r#"{"query":["array"]}"#, "an array"),
        ] {
            let response = rejected(post_json(body));
            assert_rejected(
                response,
                StatusCode::BAD_REQUEST,
                &format!("`query` parameter is {found}"),
            )
            .await;
        }
    }

    #[tokio::test]
    async fn non_string_operation_name_is_400() {
        let response = rejected(post_json(r#"{"query":"{ v }","operationName":0}"#));
        assert_rejected(
            response,
            StatusCode::BAD_REQUEST,
            "`operationName` parameter is a number",
        )
        .await;
    }

    #[tokio::test]
    async fn non_object_variables_or_extensions_are_400() {
        for (body, needle) in [
            (
                r#"{"query":"{ v }","variables":"string"}"#,
                "`variables` parameter is a string",
            ),
            (
                r#"{"query":"{ v }","variables":["array"]}"#,
                "`variables` parameter is an array",
            ),
            (
                r#"{"query":"{ v }","extensions":0}"#,
                "`extensions` parameter is a number",
            ),
            (
                r#"{"query":"{ v }","extensions":false}"#,
                "`extensions` parameter is a boolean",
            ),
        ] {
            assert_rejected(rejected(post_json(body)), StatusCode::BAD_REQUEST, needle).await;
        }
    }

    #[tokio::test]
    async fn other_methods_are_405_naming_get_and_post() {
        let response = rejected(parse(&Method::PUT, &HeaderMap::new(), None, Bytes::new()));
        assert_eq!(response.headers()[ALLOW], "GET, POST");
        assert_rejected(response, StatusCode::METHOD_NOT_ALLOWED, "POST").await;
    }

    #[test]
    fn get_reads_url_encoded_parameters() {
        let query = "query=query%20Q(%24n%3A%20Int)%20%7B%20v%20%7D&operationName=Q&variables=%7B%22n%22%3A1%7D&extensions=%7B%7D&other=1";
        let (mut request, format) = accepted(get(None, query));
        assert_eq!(format, Format::Json);
        assert_eq!(request.query, "query Q($n: Int) { v }");
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert!(request.parsed_query().is_ok());
        assert_eq!(
            request.variables.into_value().into_json().unwrap(),
            json!({ "n": 1 })
        );
    }

    #[test]
    fn get_treats_empty_optional_parameters_as_absent() {
        let (request, format) = accepted(get(
            Some("application/graphql-response+json"),
            "query=%7B%20v%20%7D&variables=&operationName=",
        ));
        assert_eq!(format, Format::GraphqlResponseJson);
        assert_eq!(request.operation_name, None);
    }

    #[test]
    fn get_leaves_syntax_errors_to_execution() {
        let (request, _) = accepted(get(None, "query=%7B"));
        assert_eq!(request.query, "{");
    }

    #[tokio::test]
    async fn get_without_query_is_400() {
        assert_rejected(
            rejected(get(None, "")),
            StatusCode::BAD_REQUEST,
            "`query` parameter is missing",
        )
        .await;
    }

    #[tokio::test]
    async fn get_with_a_repeated_parameter_is_400() {
        let response = rejected(get(None, "query=%7B%20v%20%7D&query=%7B%20v%20%7D"));
        assert_rejected(
            response,
            StatusCode::BAD_REQUEST,
            "`query` parameter is given more than once",
        )
        .await;
    }

    #[tokio::test]
    async fn get_with_malformed_variables_is_400() {
        let response = rejected(get(None, "query=%7B%20v%20%7D&variables=%7B"));
        assert_rejected(
            response,
            StatusCode::BAD_REQUEST,
            "`variables` parameter is not valid JSON",
        )
        .await;
        let response = rejected(get(None, "query=%7B%20v%20%7D&variables=%5B%5D"));
        assert_rejected(
            response,
            StatusCode::BAD_REQUEST,
            "`variables` parameter is an array",
        )
        .await;
    }

    #[tokio::test]
    async fn mutation_over_get_is_405_allowing_post() {
        let response = rejected(get(
            Some("application/graphql-response+json"),
            "query=mutation%20%7B%20__typename%20%7D",
        ));
        assert_eq!(response.headers()[ALLOW], "POST");
        assert_eq!(
            content_type(&response),
            "application/graphql-response+json; charset=utf-8"
        );
        assert_rejected(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "mutation cannot be sent with GET",
        )
        .await;
        let response = rejected(get(None, "query=subscription%20%7B%20s%20%7D"));
        assert_rejected(response, StatusCode::METHOD_NOT_ALLOWED, "subscription").await;
    }

    #[tokio::test]
    async fn get_checks_the_operation_the_name_selects() {
        let document = "query=query%20Q%20%7B%20v%20%7D%20mutation%20M%20%7B%20v%20%7D";
        accepted(get(None, &format!("{document}&operationName=Q")));
        let response = rejected(get(None, &format!("{document}&operationName=M")));
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    struct TestQuery;

    #[Object]
    impl TestQuery {
        async fn ok(&self) -> i32 {
            1
        }

        async fn fails(&self) -> async_graphql::Result<i32> {
            Err("the resolver failed".into())
        }
    }

    async fn execute(query: &str, variables: Value) -> async_graphql::Response {
        let schema = Schema::new(TestQuery, EmptyMutation, EmptySubscription);
        let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
        schema.execute(request).await
    }

    const REQUEST_ERRORS: [(&str, &str); 3] = [
        ("{", "syntax"),
        ("{ 8f31403dfe404bccbb0e835f2629c6a7 }", "validation"),
        ("query CoerceFailure($id: ID!) { ok }", "variable coercion"),
    ];

    #[tokio::test]
    async fn render_writes_data_with_200_and_the_media_type() {
        for format in [Format::GraphqlResponseJson, Format::Json] {
            let response = render(execute("{ ok }", json!({})).await, format);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[CONTENT_TYPE], format.content_type());
            assert_eq!(body(response).await, json!({ "data": { "ok": 1 } }));
        }
    }

    #[tokio::test]
    async fn render_answers_request_errors_with_400_and_no_data_in_graphql_response_json() {
        for (query, kind) in REQUEST_ERRORS {
            let response = render(
                execute(query, json!({ "id": null })).await,
                Format::GraphqlResponseJson,
            );
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{kind}");
            let body = body(response).await;
            assert!(body.get("data").is_none(), "{kind}: {body}");
            assert!(body["errors"][0]["message"].is_string(), "{kind}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_INPUT",
                "{kind}: {body}"
            );
        }
    }

    #[tokio::test]
    async fn render_answers_request_errors_with_200_and_no_data_in_json() {
        for (query, kind) in REQUEST_ERRORS {
            let response = render(execute(query, json!({ "id": null })).await, Format::Json);
            assert_eq!(response.status(), StatusCode::OK, "{kind}");
            let body = body(response).await;
            assert!(body.get("data").is_none(), "{kind}: {body}");
            assert!(body["errors"][0]["message"].is_string(), "{kind}: {body}");
        }
    }

    #[tokio::test]
    async fn render_answers_field_errors_with_200_and_null_data() {
        let response = render(
            execute("{ fails }", json!({})).await,
            Format::GraphqlResponseJson,
        );
        assert_eq!(response.status(), StatusCode::OK);
        let body = body(response).await;
        assert_eq!(body["data"], Value::Null);
        assert_eq!(body["errors"][0]["path"], json!(["fails"]));
    }

    #[tokio::test]
    async fn error_response_is_graphql_shaped_with_a_code() {
        let response = error_response(
            StatusCode::UNAUTHORIZED,
            Format::GraphqlResponseJson,
            "UNAUTHENTICATED",
            "send a token",
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            body(response).await,
            json!({ "errors": [{ "message": "send a token", "extensions": { "code": "UNAUTHENTICATED" } }] })
        );
    }
}
