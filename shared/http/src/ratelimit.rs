//! Rate limits per user and per API key, counted in the table so every Lambda instance shares them.
//!
//! Fixed one-minute windows: the first request of a window creates its counter (with a TTL), each
//! request adds one, and a request over the limit is a 429 with `Retry-After`. Every authenticated
//! response carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until
//! the window resets). Anonymous requests are limited upstream (API Gateway throttling in AWS).

use std::sync::Arc;

use amanar_core::Clock;
use amanar_core::table::{EXPIRES_AT, Table, Update, WriteOp};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{ApiKeyCaller, Caller};
use crate::problem::ApiError;

pub const WINDOW_SECS: i64 = 60;

#[derive(Clone)]
pub struct RateLimits {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
    /// Requests per minute for one user.
    pub per_user: u32,
    /// Requests per minute for one API key.
    pub per_key: u32,
}

fn headers(response: &mut Response, limit: u32, remaining: u32, reset: i64) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset.max(0)));
}

/// Counts the request against its caller's window; refuses it when the window is full.
pub async fn middleware(
    State(limits): State<RateLimits>,
    request: Request,
    next: Next,
) -> Response {
    let extensions = request.extensions();
    let (subject, limit) = if let Some(key) = extensions.get::<ApiKeyCaller>() {
        (format!("key:{}", key.key_id), limits.per_key)
    } else if let Some(caller) = extensions.get::<Caller>() {
        (format!("user:{}", caller.user_id), limits.per_user)
    } else {
        return next.run(request).await;
    };
    let now = limits.clock.now().timestamp();
    let window = now - now.rem_euclid(WINDOW_SECS);
    let reset = window + WINDOW_SECS - now;
    let key = amanar_core::keys::rate_window(&subject, window);
    let count = Update::new()
        .add("count", 1)
        .set(EXPIRES_AT, window + 2 * WINDOW_SECS);
    let used = match limits
        .table
        .write(vec![WriteOp::update(key.clone(), count)])
        .await
    {
        Ok(()) => match limits.table.get(&key).await {
            Ok(item) => item
                .and_then(|i| i.get("count").and_then(|c| c.as_i64()))
                .unwrap_or(1),
            Err(error) => return ApiError::from(error).into_response(),
        },
        Err(error) => return ApiError::from(error).into_response(),
    };
    let remaining = (i64::from(limit) - used).max(0) as u32;
    if used > i64::from(limit) {
        let mut response = ApiError::RateLimited {
            retry_after_secs: reset as u64,
        }
        .into_response();
        headers(&mut response, limit, 0, reset);
        return response;
    }
    let mut response = next.run(request).await;
    headers(&mut response, limit, remaining, reset);
    response
}
