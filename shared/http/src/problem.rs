//! The one error type of the HTTP API and its single mapping to RFC 9457 `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::request_id;

/// Base of every problem `type` URI; each problem's page documents what it means and what to do.
pub const PROBLEM_BASE: &str = "https://docs.amanarcarbon.com/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Longest piece of a client's input that an error message repeats.
pub const MAX_ECHO: usize = 60;

/// A client's input as an error message quotes it: in quotes, and cut at [`MAX_ECHO`] characters
/// so that a huge value never makes a huge problem (or a stored error list past an item limit).
pub fn quoted(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_ECHO).collect();
    if chars.next().is_some() {
        format!("{:?}", format!("{head}…"))
    } else {
        format!("{head:?}")
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, such as `items[3].amount`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// URI identifying the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Id of the request, also in the `X-Request-Id` header and in the logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Everything a handler can answer besides success. Variants are decisions a client can act on;
/// `Unexpected` carries context for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("forbidden ({slug}): {detail}")]
    Forbidden { slug: &'static str, detail: String },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict ({slug}): {detail}")]
    Conflict { slug: &'static str, detail: String },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// A domain refusal with its own status and problem type (invalid credentials, a locked
    /// account, an unverified email), with `Retry-After` when waiting helps.
    #[error("refused ({slug}): {detail}")]
    Refused {
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: String,
        retry_after_secs: Option<u64>,
    },
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn unexpected(context: impl std::fmt::Display) -> Self {
        ApiError::Unexpected(context.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Refused { status, .. } => *status,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document a client sees. Server-side details never leave the process.
    pub fn to_problem(&self) -> Problem {
        let (slug, title, detail, errors): (&str, &str, String, Vec<FieldError>) = match self {
            ApiError::BadRequest(detail) => {
                ("bad-request", "Malformed request", detail.clone(), vec![])
            }
            ApiError::Unauthenticated => (
                "unauthenticated",
                "Authentication required",
                "Send a valid access token or API key.".into(),
                vec![],
            ),
            ApiError::Forbidden { slug, detail } => (slug, "Forbidden", detail.clone(), vec![]),
            ApiError::NotFound => (
                "not-found",
                "Not found",
                "No resource exists at this path.".into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                "This resource does not accept this method.".into(),
                vec![],
            ),
            ApiError::Conflict { slug, detail } => (slug, "Conflict", detail.clone(), vec![]),
            ApiError::PayloadTooLarge => (
                "payload-too-large",
                "Payload too large",
                "The request body is too large.".into(),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as application/json.".into(),
                vec![],
            ),
            ApiError::Validation(errors) => (
                "validation",
                "Validation failed",
                "One or more fields are invalid.".into(),
                errors.clone(),
            ),
            ApiError::RateLimited { retry_after_secs } => (
                "rate-limited",
                "Too many requests",
                format!("Slow down: retry after {retry_after_secs} seconds."),
                vec![],
            ),
            ApiError::Refused {
                slug,
                title,
                detail,
                ..
            } => (slug, title, detail.clone(), vec![]),
            ApiError::Unavailable(_) => (
                "unavailable",
                "Service unavailable",
                "A dependency is temporarily unavailable; retry shortly.".into(),
                vec![],
            ),
            ApiError::Unexpected(_) => (
                "internal",
                "Internal error",
                "Something went wrong on our side. Quote the request id if you contact support."
                    .into(),
                vec![],
            ),
        };
        Problem {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title: title.into(),
            status: self.status().as_u16(),
            detail,
            request_id: request_id::current(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unexpected(context) | ApiError::Unavailable(context) => {
                tracing::error!(error = %context, status = self.status().as_u16(), "request failed");
            }
            _ => tracing::debug!(error = %self, "request refused"),
        }
        let problem = self.to_problem();
        let mut response = (
            self.status(),
            serde_json::to_vec(&problem).unwrap_or_default(),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Refused {
                retry_after_secs: Some(retry_after_secs),
                ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            _ => {}
        }
        response
    }
}

/// The one mapping of a storage error to HTTP, which every context goes through (directly or
/// through its own error's storage variant): a transient one ([`TableError::is_transient`]) is a
/// 503 with `Retry-After`, since the same request may succeed shortly; any other is a 500 whose
/// detail stays in the log. A cursor the client sent back altered is the client's to fix.
///
/// [`TableError::is_transient`]: amanar_core::TableError::is_transient
impl From<amanar_core::TableError> for ApiError {
    fn from(error: amanar_core::TableError) -> Self {
        match error {
            amanar_core::TableError::InvalidCursor => ApiError::Validation(vec![FieldError::new(
                "cursor",
                "is not a cursor this list returned; start again without it",
            )]),
            error if error.is_transient() => ApiError::Unavailable(error.to_string()),
            error => ApiError::Unexpected(error.to_string()),
        }
    }
}

impl From<amanar_core::QueueError> for ApiError {
    fn from(error: amanar_core::QueueError) -> Self {
        ApiError::Unexpected(error.to_string())
    }
}

impl From<amanar_core::BlobError> for ApiError {
    fn from(error: amanar_core::BlobError) -> Self {
        ApiError::Unexpected(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amanar_core::TableError;
    use http_body_util::BodyExt;

    /// Status, `Retry-After` and problem document of the response an error becomes.
    async fn answer(error: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_transient_storage_error_is_a_503_problem_with_retry_after() {
        for error in [
            TableError::Throttled,
            TableError::TransactionConflict,
            TableError::Unavailable("DynamoDB GetItem: dispatch failure".into()),
        ] {
            let (status, retry_after, problem) = answer(error.clone().into()).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
            assert_eq!(retry_after.as_deref(), Some("1"), "{error}");
            assert_eq!(problem["type"], format!("{PROBLEM_BASE}unavailable"));
            assert!(!problem.to_string().contains("DynamoDB"), "{problem}");
        }
    }

    #[tokio::test]
    async fn any_other_storage_error_is_a_500_whose_detail_stays_in_the_log() {
        for error in [
            TableError::Backend("stored item is corrupt: ORG#org_secret".into()),
            TableError::Invalid("attribute gsi1pk must be a string".into()),
            TableError::ConditionFailed {
                index: 0,
                pk: "ORG#org_secret".into(),
                sk: "ORG".into(),
            },
        ] {
            let (status, retry_after, problem) = answer(error.clone().into()).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{error}");
            assert_eq!(retry_after, None, "{error}");
            assert_eq!(problem["type"], format!("{PROBLEM_BASE}internal"));
            let text = problem.to_string();
            assert!(
                !text.contains("org_secret") && !text.contains("gsi1pk"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_cursor_the_table_did_not_issue_is_the_client_s_to_fix() {
        let (status, retry_after, problem) = answer(TableError::InvalidCursor.into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(retry_after, None);
        assert_eq!(problem["errors"][0]["field"], "cursor");
    }
}
