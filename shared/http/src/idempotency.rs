//! `Idempotency-Key` for POST requests, stored in the table so it holds across Lambda instances.
//!
//! The first request with a key reserves it (a conditional put), runs, and stores its response; a
//! replay with the same body gets that response again (`Idempotent-Replayed: true`); the same key
//! with a different body, or while the first is still running, is a 409. A 5xx answer releases the
//! key so the client can retry. Keys are scoped to the caller and kept for 24 hours.
//!
//! A response that carries a secret ([`crate::secret`]) is never stored: its record keeps the key
//! (so the operation still happens once) but no body, and a replay is a 409
//! `idempotency-replay-withheld` that says why.

use std::sync::Arc;

use amanar_core::table::{Condition, EXPIRES_AT, Item, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, keys};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::problem::ApiError;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const KEEP_FOR_SECS: i64 = 24 * 3600;
/// Largest response kept for replay. It is stored base64-encoded (4/3 larger) in an item of at
/// most 400 KB, so 256 KiB (341 KiB encoded) leaves room for the rest of the record.
const MAX_STORED_BODY: usize = 256 * 1024;
/// Headers of the first response that a replay repeats.
const REPLAYED_HEADERS: [header::HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// Who is calling, as far as idempotency keys are concerned. Authentication inserts it into the
/// request extensions; requests without one share the anonymous scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerScope(pub String);

#[derive(Clone)]
pub struct Idempotency {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Largest request body accepted (the middleware buffers the body to fingerprint it).
    pub body_limit: usize,
    /// Paths whose responses are never stored (sign-in answers carry tokens, and their bodies
    /// passwords): a key there is accepted and ignored.
    pub exempt_prefixes: &'static [&'static str],
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    fingerprint: String,
    state: String,
    expires_at: i64,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

fn fingerprint(method: &Method, uri: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update([0]);
    hash.update(uri);
    hash.update([0]);
    hash.update(body);
    hex::encode(hash.finalize())
}

fn replay(record: &Record) -> Response {
    let status = record
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = record
        .body
        .as_deref()
        .and_then(|b| STANDARD.decode(b).ok())
        .unwrap_or_default();
    let mut response = (status, body).into_response();
    for (name, value) in &record.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect()
}

/// Record states: reserved, done with a stored response, done with a response not kept.
const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";
const WITHHELD: &str = "withheld";

/// The answer to a replay of a request whose response carried a secret.
fn replay_withheld() -> ApiError {
    ApiError::Conflict {
        slug: "idempotency-replay-withheld",
        detail: "The request with this Idempotency-Key succeeded once already. Its response carried a secret, which is never stored, so it cannot be sent again: read the resource it made instead (the secret itself cannot be shown again).".into(),
    }
}

/// The answer while another request with the same key holds it.
fn key_in_use() -> ApiError {
    ApiError::Conflict {
        slug: "idempotency-key-in-use",
        detail: "A request with this Idempotency-Key is in progress; retry shortly.".into(),
    }
}

/// Middleware applying idempotency keys to POST requests that carry one.
pub async fn middleware(
    State(store): State<Idempotency>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST
        || !request.headers().contains_key(HEADER)
        || store
            .exempt_prefixes
            .iter()
            .any(|p| request.uri().path().starts_with(p))
    {
        return Ok(next.run(request).await);
    }
    let key = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !valid_key(&key) {
        return Err(ApiError::validation(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    let scope = request
        .extensions()
        .get::<CallerScope>()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| "anonymous".into());
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, store.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let print = fingerprint(&parts.method, &parts.uri.to_string(), &bytes);
    let record_key = keys::idempotency(&scope, &key);
    let now = store.clock.now().timestamp();

    let reserve = Record {
        fingerprint: print.clone(),
        state: IN_PROGRESS.into(),
        expires_at: now + KEEP_FOR_SECS,
        status: None,
        headers: vec![],
        body: None,
    };
    let reserved = items::with_key(&record_key, &reserve)?;
    match store
        .table
        .write(vec![
            WriteOp::put(reserved.clone()).when(Condition::NotExists),
        ])
        .await
    {
        Ok(()) => {}
        Err(TableError::ConditionFailed { .. }) => {
            let existing: Option<Item> = store.table.get(&record_key).await?;
            let Some(existing) = existing else {
                return Err(key_in_use());
            };
            let record: Record = items::parse(existing)?;
            if record.expires_at <= now {
                // An expired key is free again: replace it, unless another request just did.
                let expired = Condition::Equals(EXPIRES_AT.into(), record.expires_at.into());
                store
                    .table
                    .write(vec![WriteOp::put(reserved).when(expired)])
                    .await
                    .map_err(|e| match e {
                        TableError::ConditionFailed { .. } => key_in_use(),
                        other => other.into(),
                    })?;
            } else if record.fingerprint != print {
                return Err(ApiError::Conflict {
                    slug: "idempotency-key-reused",
                    detail: "This Idempotency-Key was used for a different request; use a new key for a new request.".into(),
                });
            } else if record.state == COMPLETED {
                return Ok(replay(&record));
            } else if record.state == WITHHELD {
                return Err(replay_withheld());
            } else {
                return Err(key_in_use());
            }
        }
        Err(other) => return Err(other.into()),
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    if status.is_server_error() {
        // Nothing durable happened (or it will be reconciled): let the client retry with the same key.
        if let Err(error) = store.table.write(vec![WriteOp::delete(record_key)]).await {
            tracing::warn!(%error, "could not release an idempotency key");
        }
        return Ok(response);
    }
    if crate::secret::carries_secret(&response) {
        let withheld = Update::new()
            .set("state", WITHHELD)
            .set("status", status.as_u16());
        if let Err(error) = store
            .table
            .write(vec![WriteOp::update(record_key, withheld)])
            .await
        {
            tracing::warn!(%error, "could not mark an idempotency key done; a replay will answer 409");
        }
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(ApiError::unexpected)?;
    let stored_body = (body.len() <= MAX_STORED_BODY).then(|| STANDARD.encode(&body));
    let complete = Update::new()
        .set("state", COMPLETED)
        .set("status", status.as_u16())
        .set(
            "headers",
            serde_json::to_value(kept_headers(&parts.headers)).unwrap_or_default(),
        )
        .set(
            "body",
            stored_body
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        );
    if let Err(error) = store
        .table
        .write(vec![WriteOp::update(record_key, complete)])
        .await
    {
        tracing::warn!(%error, "could not store an idempotent response; a replay will answer 409");
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}
