//! The HTTP layer every function shares: problem+json errors, extractors whose rejections are
//! problems, request ids, cursor pagination, idempotency keys, the docs page and logging.

pub mod auth;
pub mod context;
pub mod docs;
pub mod extract;
pub mod idempotency;
pub mod pagination;
pub mod prepared;
pub mod problem;
pub mod ratelimit;
pub mod request_id;
pub mod scope;
pub mod secret;
pub mod telemetry;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

pub use auth::{ApiKeyCaller, Auth, Caller, OrgAction, OrgGuard, Principal, Verifier};
pub use context::{Context, HttpFunction, HttpService, Tag};
pub use extract::{Json, Query, bounded};
pub use idempotency::{CallerScope, Idempotency};
pub use pagination::{List, PageParams, PageRequest};
pub use prepared::Prepared;
pub use problem::{ApiError, FieldError, Problem, quoted};
pub use ratelimit::{ClientAddr, RateLimits};
pub use scope::{Scope, require_scope};
pub use secret::carrying_secret;

/// Largest request body accepted by default.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::Unexpected(format!("handler panicked: {message}")).into_response()
}

/// Wraps a router with the shared behaviour: problem+json for unknown routes and methods, bearer
/// tokens checked (when a verifier is given) before idempotency keys on POST, a body limit, panics
/// turned into 500 problems, and request ids with one log line per request.
pub fn finish(
    router: Router,
    idempotency: Idempotency,
    auth: Option<std::sync::Arc<Auth>>,
    limits: Option<RateLimits>,
) -> Router {
    let body_limit = idempotency.body_limit;
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            idempotency,
            idempotency::middleware,
        ));
    // Layers run outside-in: request id, panics, body limit, authentication, rate limit,
    // idempotency, handler.
    let router = match limits {
        Some(limits) => router.layer(axum::middleware::from_fn_with_state(
            limits,
            ratelimit::middleware,
        )),
        None => router,
    };
    let router = match auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(auth, auth::middleware)),
        None => router,
    };
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(request_id::middleware))
}
