//! Request ids: taken from a well-formed incoming `X-Request-Id` (or API Gateway's own id) or made
//! anew, returned on every response, attached to the request's log span and to problem documents.
//! The same outermost layer adds `X-Content-Type-Options: nosniff` to every response, so no
//! browser reads a JSON or CSV body as something else.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn acceptable(id: &str) -> bool {
    (8..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

/// The headers every response carries, whichever router served it (the local runtime adds them to
/// the routes it merges outside this layer too).
pub fn every_response_headers(headers: &mut axum::http::HeaderMap) {
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Middleware: assigns the id, opens the request span and logs one line per request.
pub async fn middleware(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .or_else(|| request.headers().get("apigw-requestid"))
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string().to_lowercase());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let span = tracing::info_span!("request", request_id = %id, %method, route = %route);
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let _entered = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "served"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    every_response_headers(response.headers_mut());
    response
}
