//! `GET /v1/health`: whether the table answers and whether the job pipeline (schedule -> queue ->
//! worker) ran recently, read from the canary item the worker keeps.

use std::sync::Arc;
use std::time::Instant;

use amanar_core::{Clock, DepsError, FromDeps, Need, Provide, Table, keys};
use amanar_http::HttpFunction;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::canary::{CanaryRecord, STALE_AFTER};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, `degraded` (serving, but background jobs lag) or `unavailable`.
    pub status: &'static str,
    pub version: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    pub table: TableCheck,
    pub jobs: JobsCheck,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableCheck {
    pub status: &'static str,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobsCheck {
    /// `ok`, `stale` (no canary processed for 15 minutes) or `unknown` (none yet).
    pub status: &'static str,
    pub last_canary_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Reports service health. No authentication.
#[utoipa::path(get, path = "/v1/health", tag = "platform", summary = "Service health",
    description = "Checks that the table answers and that background jobs ran recently. 200 while the API can serve, 503 when the table is unavailable.",
    responses((status = 200, description = "Serving", body = Health), (status = 503, description = "Unavailable", body = Health)))]
pub async fn health(State(ports): State<HealthState>) -> impl IntoResponse {
    let started = Instant::now();
    let canary = ports.table.get(&keys::canary()).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    let (table, jobs) = match canary {
        Ok(item) => {
            let last = item
                .and_then(|i| amanar_core::table::items::parse::<CanaryRecord>(i).ok())
                .map(|r| r.processed_at);
            let status = match last {
                None => "unknown",
                Some(at) if ports.clock.now() - at > STALE_AFTER => "stale",
                Some(_) => "ok",
            };
            (
                TableCheck {
                    status: "ok",
                    latency_ms,
                },
                JobsCheck {
                    status,
                    last_canary_at: last,
                },
            )
        }
        Err(error) => {
            tracing::error!(%error, "health check: table unavailable");
            (
                TableCheck {
                    status: "unavailable",
                    latency_ms,
                },
                JobsCheck {
                    status: "unknown",
                    last_canary_at: None,
                },
            )
        }
    };
    let (code, status) = match (table.status, jobs.status) {
        ("unavailable", _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (_, "stale") => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ok"),
    };
    (
        code,
        amanar_http::Json(Health {
            status,
            version: env!("CARGO_PKG_VERSION"),
            checks: Checks { table, jobs },
        }),
    )
}

/// What the health check reads: the table (and its canary item) and the clock.
#[derive(Clone)]
pub struct HealthState {
    pub table: Arc<dyn Table>,
    pub clock: Arc<dyn Clock>,
}

impl<D: Provide<Arc<dyn Table>> + Provide<Arc<dyn Clock>> + Sync> FromDeps<D> for HealthState {
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            table: deps.need::<Arc<dyn Table>>().await?,
            clock: deps.need::<Arc<dyn Clock>>().await?,
        })
    }
}

/// The `api-health` function.
pub const FUNCTION: HttpFunction<HealthState> = HttpFunction {
    name: "api-health",
    routes: router,
};

fn router() -> OpenApiRouter<HealthState> {
    OpenApiRouter::new().routes(routes!(health))
}
