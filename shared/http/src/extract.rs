//! Extractors whose rejections are problem documents: `Json` (with the path of the offending field)
//! and `Query`.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, FieldError};

/// JSON body in, JSON body out. Refuses other content types (415), oversized bodies (413), broken
/// JSON (400) and JSON of the wrong shape (422, naming the field).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON, telling syntax errors (400) from shape errors (422 with the field path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { String::new() } else { path };
                    ApiError::Validation(vec![FieldError::new(field, data_message(&inner))])
                }
                _ => ApiError::BadRequest(format!("the body is not valid JSON: {inner}")),
            });
        }
    };
    deserializer
        .end()
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Parses an already-parsed JSON value (one item of a batch) the same way: a shape error is a 422
/// naming the field, relative to the value.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { String::new() } else { path };
        ApiError::Validation(vec![FieldError::new(field, data_message(error.inner()))])
    })
}

/// Longest serde message a problem repeats: serde quotes the offending input ("unknown variant
/// `...`"), which could otherwise be as long as the body.
const MAX_DATA_MESSAGE: usize = 300;

/// Longest field path a problem repeats: an unknown query parameter's name is the caller's text.
const MAX_FIELD: usize = 100;

/// At most `max` characters of `text`, with `…` when cut: for repeating what a caller wrote.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// serde's message without its " at line 1 column 9" suffix (the field path says where), cut to
/// [`MAX_DATA_MESSAGE`] characters.
fn data_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    };
    bounded(text, MAX_DATA_MESSAGE)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest("the body could not be read".into())
                }
            })?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string parameters; a malformed or mistyped one is a 422 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let field = error.path().to_string();
                let field = if field == "." { String::new() } else { field };
                ApiError::Validation(vec![FieldError::new(
                    bounded(&field, MAX_FIELD),
                    bounded(&error.into_inner().to_string(), MAX_DATA_MESSAGE),
                )])
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        quantity: u32,
        items: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        amount: String,
    }

    fn errors(result: Result<Order, ApiError>) -> Vec<FieldError> {
        match result {
            Err(ApiError::Validation(errors)) => errors,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn bounded_cuts_on_characters_and_marks_the_cut() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "abc…");
        assert_eq!(bounded("ééé", 2), "éé…");
    }

    #[test]
    fn an_unknown_query_parameter_is_echoed_bounded() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Params {
            limit: Option<u32>,
        }
        let long = "x".repeat(3_000);
        let mut parts = axum::http::Request::builder()
            .uri(format!("/v1/things?{long}=1"))
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let rejected = runtime
            .block_on(Query::<Params>::from_request_parts(&mut parts, &()))
            .unwrap_err();
        let ApiError::Validation(errors) = rejected else {
            panic!("expected a validation error")
        };
        let echoed = errors[0].field.len() + errors[0].message.len();
        assert!(
            echoed < 500,
            "{echoed} bytes echoed for a 3,000-character name"
        );
    }

    #[test]
    fn a_mistyped_nested_field_is_named_by_its_path() {
        let errors = errors(parse_json(
            br#"{"quantity": 1, "items": [{"amount": "1"}, {"amount": 2}]}"#,
        ));
        assert_eq!(errors[0].field, "items[1].amount");
        assert!(
            errors[0].message.starts_with("invalid type: integer `2`"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_validation_errors() {
        assert!(
            errors(parse_json(br#"{"quantity": 1, "items": [], "extra": 1}"#))[0]
                .message
                .contains("unknown field `extra`")
        );
        assert!(
            errors(parse_json(br#"{"items": []}"#))[0]
                .message
                .contains("missing field `quantity`")
        );
    }

    #[test]
    fn broken_json_and_trailing_garbage_are_bad_requests() {
        assert!(matches!(
            parse_json::<Order>(br#"{"quantity": "#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Order>(br#"{"quantity": 1, "items": []} x"#),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
