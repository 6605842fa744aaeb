//! HTTP routes of retirements (the `api-retirements` function): requesting one from a holding,
//! following it, and its public record and certificate.
//!
//! Who may do what: the holding's owner retires from it (a user their own; an organisation's
//! members and up, and its API keys with `retirements:write`); the owner's readers follow it; anyone
//! reads the public record of a retired retirement, which never names the owner or who asked.

use amanar_core::{Bucket, DepsError, FromDeps, Need, Ports, Provide};
use amanar_http::{
    ApiError, HttpFunction, Json, List, OrgAction, OrgGuard, PageParams, Principal, Problem, Query,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ORDERS_READ;
use crate::api::{OwnerParams, keyed_id, may_read, may_retire, owner_for, text, valid_id};
use crate::holdings::Holdings;
use crate::retirement_worker::public_path;
use crate::retirements::{
    NewRetirement, Retirement, RetirementError, RetirementStatus, Retirements, enqueue,
};
use amanar_marketplace::projects::Projects;

/// The most tonnes one retirement may claim: what one order line may buy.
const MAX_QUANTITY: u64 = crate::orders::MAX_LINE_QUANTITY;

#[derive(Clone)]
pub struct RetirementsState {
    pub ports: Ports,
    pub guard: Arc<dyn OrgGuard>,
}

impl<D> FromDeps<D> for RetirementsState
where
    D: Provide<Ports> + Provide<Arc<dyn OrgGuard>> + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            ports: deps.need::<Ports>().await?,
            guard: deps.need::<Arc<dyn OrgGuard>>().await?,
        })
    }
}

pub const RETIREMENTS: HttpFunction<RetirementsState> = HttpFunction {
    name: "api-retirements",
    routes: router,
};

/// The anonymous routes, in a function of their own: it reads retirement records and
/// certificates and nothing else.
pub const PUBLIC_RETIREMENTS: HttpFunction<RetirementsState> = HttpFunction {
    name: "api-public-retirements",
    routes: public_router,
};

fn router() -> OpenApiRouter<RetirementsState> {
    OpenApiRouter::new()
        .routes(routes!(request_retirement, list_retirements))
        .routes(routes!(get_retirement))
}

fn public_router() -> OpenApiRouter<RetirementsState> {
    OpenApiRouter::new()
        .routes(routes!(public_retirement))
        .routes(routes!(retirement_certificate))
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// A retirement to make from a holding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRetirement {
    pub holding_id: String,
    /// Whole tonnes, at most what the holding has left to retire.
    pub quantity: u64,
    /// Whose claim the retirement is (printed on the certificate).
    pub beneficiary: String,
    pub reason: Option<String>,
}

/// How to check a retirement's verification hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// `sha256`.
    pub algorithm: &'static str,
    /// The text hashed: the claim's fields as JSON, keys sorted, no spaces.
    pub canonical: String,
}

/// A retirement as anyone may read it: a registry-style record, without its owner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicRetirement {
    pub retirement_id: String,
    pub status: RetirementStatus,
    pub project_id: String,
    pub project_name: String,
    /// The standard (registry) the credits are certified under: `VCS`, `GOLD_STANDARD`, ...
    pub registry: String,
    /// The same, under the name the verification text gives it.
    pub standard: String,
    /// The issuance the credits came from.
    pub issuance_id: String,
    pub registry_project_id: Option<String>,
    pub registry_url: Option<String>,
    #[schema(value_type = Object)]
    pub vintage: serde_json::Value,
    /// The exact serial blocks retired, in the registry's format.
    pub serials: Vec<String>,
    pub quantity: u64,
    pub beneficiary: String,
    pub reason: Option<String>,
    pub retired_at: Option<DateTime<Utc>>,
    /// The PDF certificate, once written (relative to the API's base URL).
    pub certificate_url: Option<String>,
    /// SHA-256 of `verification.canonical`; the certificate prints it too.
    pub verification_hash: Option<String>,
    pub verification: Option<Verification>,
}

impl PublicRetirement {
    fn of(r: &Retirement) -> Self {
        let certificate_url = r
            .certificate_key
            .as_ref()
            .map(|_| format!("{}/certificate", public_path(&r.retirement_id)));
        PublicRetirement {
            retirement_id: r.retirement_id.clone(),
            status: r.status,
            project_id: r.project_id.clone(),
            project_name: r.project_name.clone(),
            registry: r.standard.to_string(),
            standard: r.standard.to_string(),
            issuance_id: r.issuance_id.clone(),
            registry_project_id: r.registry_project_id.clone(),
            registry_url: r.registry_url.clone(),
            vintage: json!(r.vintage),
            serials: r.serials.clone(),
            quantity: r.quantity,
            beneficiary: r.beneficiary.clone(),
            reason: r.reason.clone(),
            retired_at: r.retired_at,
            certificate_url,
            verification_hash: r.verification_hash.clone(),
            verification: r.claim().map(|claim| Verification {
                algorithm: "sha256",
                canonical: claim.canonical(),
            }),
        }
    }
}

/// A retirement as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetirementView {
    #[serde(flatten)]
    pub record: PublicRetirement,
    /// `USER#<id>` or `ORG#<id>`.
    pub owner: String,
    pub holding_id: String,
    pub order_id: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// The public record, for anyone.
    pub public_url: String,
    /// Why it failed (`status: failed`; its tonnes went back to the holding).
    pub reason_failed: Option<String>,
}

impl RetirementView {
    fn of(r: &Retirement) -> Self {
        RetirementView {
            record: PublicRetirement::of(r),
            owner: r.owner.clone(),
            holding_id: r.holding_id.clone(),
            order_id: r.order_id.clone(),
            requested_at: r.created_at,
            public_url: public_path(&r.retirement_id),
            reason_failed: r.reason_failed.clone(),
        }
    }
}

impl From<RetirementError> for ApiError {
    fn from(error: RetirementError) -> Self {
        match error {
            RetirementError::NotFound => ApiError::NotFound,
            RetirementError::Insufficient {
                available,
                requested,
            } => ApiError::Conflict {
                slug: "insufficient-credits",
                detail: format!(
                    "The holding has {available} t left to retire; {requested} t were asked for. Nothing was retired."
                ),
            },
            RetirementError::KeyReused => ApiError::Conflict {
                slug: "idempotency-key-reused",
                detail: "This Idempotency-Key requested another retirement; use a new key for a new retirement.".into(),
            },
            RetirementError::Ledger(e) => e.into(),
            RetirementError::Table(e) => e.into(),
        }
    }
}

fn fingerprint(body: &RequestRetirement, beneficiary: &str, reason: Option<&str>) -> String {
    let canonical = json!([body.holding_id, body.quantity, beneficiary, reason]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Requests a retirement from a holding.
#[utoipa::path(post, path = "/v1/retirements", tag = "orders", summary = "Retire credits",
    security(("bearer" = []), ("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same retirement; the same key with another request is a 409")),
    request_body = RequestRetirement,
    description = "Takes the tonnes from the holding at once (concurrent retirements never exceed it), then retires exact serials, lowest first, writes the public record and the PDF certificate in the background. Follow it at the `Location`.",
    responses((status = 202, description = "Accepted; the retirement as it stands", body = RetirementView),
        (status = 404, description = "No such holding for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The holding has fewer tonnes left to retire, or the key requested another retirement", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (the field is named)", body = Problem, content_type = "application/problem+json")))]
pub async fn request_retirement(
    State(state): State<RetirementsState>,
    principal: Principal,
    headers: HeaderMap,
    Json(body): Json<RequestRetirement>,
) -> Result<Response, ApiError> {
    valid_id("holdingId", &body.holding_id)?;
    if !(1..=MAX_QUANTITY).contains(&body.quantity) {
        return Err(ApiError::validation(
            "quantity",
            format!("whole tonnes, 1 to {MAX_QUANTITY}"),
        ));
    }
    let beneficiary = text("beneficiary", Some(body.beneficiary.clone()))?.unwrap_or_default();
    let reason = text("reason", body.reason.clone())?;
    let (retirement_id, keyed) = keyed_id("retirement", "ret", &principal, &headers)?;
    let table = state.ports.table.clone();
    let holding = Holdings::new(table.clone())
        .get(&body.holding_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    may_retire(&*state.guard, &principal, &holding.owner).await?;
    let project = Projects::new(table.clone())
        .get(&holding.project_id)
        .await?;
    let (registry_project_id, registry_url) = project.map_or((None, None), |p| {
        (p.fields.registry_project_id, p.fields.registry_url)
    });
    let new = NewRetirement {
        retirement_id,
        requested_by: principal.subject(),
        quantity: body.quantity,
        fingerprint: fingerprint(&body, &beneficiary, reason.as_deref()),
        beneficiary,
        reason,
        registry_project_id,
        registry_url,
        order_id: None,
        now: state.ports.clock.now(),
        holding,
    };
    let store = Retirements::new(table);
    let (retirement, written) = store.request(&new).await?;
    if retirement.status == RetirementStatus::Requested {
        // A send that fails leaves the retirement requested: the sweeper sends it again.
        if let Err(e) = enqueue(&*state.ports.queue, &retirement.retirement_id).await {
            tracing::warn!(retirement = %retirement.retirement_id, error = %e, "retirement queued later by the sweeper");
        }
    }
    let id = retirement.retirement_id.clone();
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/retirements/{id}"))],
        Json(RetirementView::of(&retirement)),
    )
        .into_response();
    if keyed && !written {
        response.headers_mut().insert(
            amanar_http::idempotency::REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Lists retirements, newest first.
#[utoipa::path(get, path = "/v1/retirements", tag = "orders", summary = "List retirements",
    security(("bearer" = []), ("apiKey" = [])),
    params(OwnerParams),
    responses((status = 200, description = "A page of retirements, newest first", body = List<RetirementView>),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_retirements(
    State(state): State<RetirementsState>,
    principal: Principal,
    Query(params): Query<OwnerParams>,
) -> Result<Json<List<RetirementView>>, ApiError> {
    let owner = owner_for(
        &*state.guard,
        &principal,
        params.org_id.as_deref(),
        OrgAction::Read,
        ORDERS_READ,
    )
    .await?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .validate()?;
    let (found, next) = Retirements::new(state.ports.table.clone())
        .of_owner(&owner, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(
        found.iter().map(RetirementView::of).collect(),
        next,
    )))
}

/// Reads a retirement.
#[utoipa::path(get, path = "/v1/retirements/{retirementId}", tag = "orders", summary = "Get a retirement",
    security(("bearer" = []), ("apiKey" = [])),
    params(("retirementId" = String, Path, description = "Retirement id")),
    responses((status = 200, description = "The retirement; its certificate URL once completed", body = RetirementView),
        (status = 404, description = "No such retirement for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_retirement(
    State(state): State<RetirementsState>,
    principal: Principal,
    Path(retirement_id): Path<String>,
) -> Result<Json<RetirementView>, ApiError> {
    valid_id("retirementId", &retirement_id)?;
    let retirement = Retirements::new(state.ports.table.clone())
        .get(&retirement_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    may_read(&*state.guard, &principal, &retirement.owner).await?;
    Ok(Json(RetirementView::of(&retirement)))
}

/// A retirement as the public sees it: only once its credits are retired.
async fn public_record(
    state: &RetirementsState,
    retirement_id: &str,
) -> Result<Retirement, ApiError> {
    valid_id("retirementId", retirement_id)?;
    let retirement = Retirements::new(state.ports.table.clone())
        .get(retirement_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if matches!(
        retirement.status,
        RetirementStatus::Requested | RetirementStatus::Failed
    ) {
        return Err(ApiError::NotFound);
    }
    Ok(retirement)
}

/// Reads a retirement's public record.
#[utoipa::path(get, path = "/v1/public/retirements/{retirementId}", tag = "orders", summary = "Public retirement record",
    params(("retirementId" = String, Path, description = "Retirement id")),
    description = "Public, no authentication. A registry-style record of retired credits: project, registry, vintage, exact serials, quantity, beneficiary, reason, date, certificate and verification hash. Never the owner's account or email. 404 until the credits are retired.",
    responses((status = 200, description = "The record", body = PublicRetirement),
        (status = 404, description = "No such retired retirement", body = Problem, content_type = "application/problem+json")))]
pub async fn public_retirement(
    State(state): State<RetirementsState>,
    Path(retirement_id): Path<String>,
) -> Result<Json<PublicRetirement>, ApiError> {
    let retirement = public_record(&state, &retirement_id).await?;
    Ok(Json(PublicRetirement::of(&retirement)))
}

/// Downloads a retirement's certificate.
#[utoipa::path(get, path = "/v1/public/retirements/{retirementId}/certificate", tag = "orders", summary = "Retirement certificate (PDF)",
    params(("retirementId" = String, Path, description = "Retirement id")),
    description = "Public, no authentication. The PDF certificate, printing the public record and its verification hash.",
    responses((status = 200, description = "The certificate", content_type = "application/pdf"),
        (status = 404, description = "No certificate (yet) for this retirement", body = Problem, content_type = "application/problem+json")))]
pub async fn retirement_certificate(
    State(state): State<RetirementsState>,
    Path(retirement_id): Path<String>,
) -> Result<Response, ApiError> {
    let retirement = public_record(&state, &retirement_id).await?;
    let key = retirement.certificate_key.ok_or(ApiError::NotFound)?;
    let blob = state
        .ports
        .blobs
        .get(Bucket::Exports, &key)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{retirement_id}.pdf\""),
            ),
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        blob.bytes,
    )
        .into_response())
}
