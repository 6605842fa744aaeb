//! HTTP routes of listings and agency ratings (part of the `api-projects` function).
//!
//! Who may do what:
//! - whoever may change a project (its developer, or its organisation's members, and its keys with
//!   `listings:write`: selling is not editing) lists its credits, changes the price, pauses,
//!   resumes and closes;
//! - the project's side reads its listings in any state and their history; any other caller reads
//!   an open (active or paused) listing without who sells it or who made it, and a closed one is
//!   404 to them;
//! - admins record agency ratings on approved projects; the ratings show on the project and in the
//!   catalogue.

use amanar_core::new_id;
use amanar_http::{ApiError, Json, List, PageParams, Principal, Problem, Query};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::LISTINGS_WRITE;
use crate::api::{ProjectsState, admin};
use crate::ledger::Ledger;
use crate::listings::{
    Listing, ListingChange, ListingError, ListingEvent, ListingStatus, Listings, NewListing,
};
use crate::money::Money;
use crate::projects::{ProjectError, Status};
use crate::ratings::{self, AgencyRating, NewRating};

/// The most tonnes one listing offers.
pub const MAX_LISTING: u64 = crate::ledger::MAX_ISSUANCE;

/// The longest id a path or body may name (ids here are far shorter).
const MAX_ID: usize = 128;

/// A new record's id: derived from the caller and its `Idempotency-Key` when it sends one, so a
/// retry after an unknown outcome (a 503 whose write landed) finds the record it made instead of
/// making a second; random otherwise.
fn id_for(prefix: &str, principal: &Principal, headers: &HeaderMap) -> String {
    use sha2::{Digest, Sha256};
    match headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        Some(key) if !key.is_empty() => {
            let mut hash = Sha256::new();
            hash.update(prefix.as_bytes());
            hash.update([0]);
            hash.update(principal.subject().as_bytes());
            hash.update([0]);
            hash.update(key.as_bytes());
            format!("{prefix}_{}", &hex::encode(hash.finalize())[..26])
        }
        _ => new_id(prefix),
    }
}

/// A listing as someone outside the project's side sees it: no seller, no maker.
fn public(listing: Listing) -> serde_json::Value {
    let mut value = serde_json::to_value(listing).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.remove("seller");
        object.remove("createdBy");
    }
    value
}

/// A new listing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateListing {
    pub project_id: String,
    /// The issuance (credit batch) to sell from; `issuanceId`, as responses name it, is accepted.
    #[serde(alias = "issuanceId")]
    pub batch_id: String,
    /// Whole tonnes.
    pub quantity: u64,
    /// Per tonne, rounded to the currency's minor unit.
    pub unit_price: Money,
}

/// A change of a listing's terms.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeListing {
    /// A new price per tonne, in the listing's currency.
    pub unit_price: Option<Money>,
    /// `active` (resume), `paused`, or `closed` (unsold credits go back to inventory).
    pub status: Option<ListingStatus>,
    /// The terms version you read; when given, a listing whose terms changed since is a 409.
    pub version: Option<u64>,
}

impl From<ListingError> for ApiError {
    fn from(error: ListingError) -> Self {
        match error {
            ListingError::NotFound => ApiError::NotFound,
            ListingError::Insufficient {
                available,
                requested,
            } => ApiError::Conflict {
                slug: "insufficient-credits",
                detail: format!(
                    "{available} credits of the batch are unlisted in inventory; {requested} were asked for."
                ),
            },
            ListingError::State { current } => ApiError::Conflict {
                slug: "listing-state",
                detail: format!("The listing is {current}; it changes no more."),
            },
            ListingError::Version { current } => ApiError::Conflict {
                slug: "edit-conflict",
                detail: format!(
                    "The listing's terms are at version {current}; read it again and change that version."
                ),
            },
            ListingError::Empty => {
                ApiError::validation("unitPrice", "name a new unitPrice or a status")
            }
            ListingError::Currency(currency) => ApiError::validation(
                "unitPrice.currency",
                format!(
                    "a listing's price stays in {currency}; close it and list again to change currency"
                ),
            ),
            ListingError::TooManyListings => ApiError::Conflict {
                slug: "too-many-listings",
                detail: format!(
                    "A project has at most {} open listings; close one first.",
                    crate::listings::MAX_OPEN_LISTINGS
                ),
            },
            ListingError::CloseWithChanges => {
                ApiError::validation("status", "closing takes no other change; send status alone")
            }
            ListingError::Ledger(crate::ledger::LedgerError::Invalid(reason)) => {
                ApiError::unexpected(reason)
            }
            ListingError::Ledger(e) => e.into(),
            ListingError::Table(e) => e.into(),
        }
    }
}

impl ProjectsState {
    fn listings(&self) -> Listings {
        Listings::new(self.ports.table.clone())
    }

    /// The listing, if the principal may read it: the project's side always, anyone else while
    /// it is open.
    async fn readable_listing(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(Listing, bool), ApiError> {
        if id.len() > MAX_ID {
            return Err(ApiError::NotFound);
        }
        let listing = self.listings().get(id).await?.ok_or(ApiError::NotFound)?;
        let ours = match self.projects().get(&listing.project_id).await? {
            Some(project) => self.owns(principal, &project).await?,
            None => false,
        };
        if ours || listing.status != ListingStatus::Closed {
            return Ok((listing, ours));
        }
        Err(ApiError::NotFound)
    }

    /// The listing, if the principal may change its project.
    async fn writable_listing(&self, principal: &Principal, id: &str) -> Result<Listing, ApiError> {
        let (listing, ours) = self.readable_listing(principal, id).await?;
        if !ours {
            return Err(ApiError::NotFound);
        }
        self.writable_with(principal, &listing.project_id, LISTINGS_WRITE)
            .await?;
        Ok(listing)
    }
}

/// Lists credits of an issuance for sale.
#[utoipa::path(post, path = "/v1/listings", tag = "marketplace", summary = "List credits",
    security(("bearer" = []), ("apiKey" = [])), request_body = CreateListing,
    description = "Moves `quantity` credits of the batch from the developer's inventory into the listing, in one write: the listing's available count and its ledger account always agree. The price is rounded to the currency's minor unit (none for JPY, three decimals for KWD). Accepts `Idempotency-Key`.",
    responses((status = 201, description = "The listing", body = Listing),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is not approved, has 100 open listings, or its inventory holds fewer unlisted credits of the batch", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A quantity, price or currency that failed its check, or a batchId that is not an issuance of the project", body = Problem, content_type = "application/problem+json")))]
pub async fn create_listing(
    State(state): State<ProjectsState>,
    principal: Principal,
    headers: HeaderMap,
    Json(request): Json<CreateListing>,
) -> Result<Response, ApiError> {
    if request.project_id.len() > MAX_ID || request.batch_id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    if request.quantity == 0 || request.quantity > MAX_LISTING {
        return Err(ApiError::validation(
            "quantity",
            format!("must be 1 to {MAX_LISTING} whole tonnes"),
        ));
    }
    if request.unit_price.amount().is_zero() {
        return Err(ApiError::validation(
            "unitPrice.amount",
            "must be more than zero",
        ));
    }
    let project = state
        .writable_with(&principal, &request.project_id, LISTINGS_WRITE)
        .await?;
    if project.status != Status::Approved {
        return Err(ProjectError::State {
            current: project.status.as_str(),
        }
        .into());
    }
    let issuance = Ledger::new(state.ports.table.clone())
        .issuance(&request.batch_id)
        .await?
        .filter(|i| i.project_id == project.id)
        .ok_or_else(|| ApiError::validation("batchId", "is not an issuance of this project"))?;
    let id = id_for("lst", &principal, &headers);
    let listing = state
        .listings()
        .create(NewListing {
            id: id.clone(),
            project_id: project.id.clone(),
            issuance_id: issuance.id.clone(),
            seller: project.owner.clone(),
            standard: issuance.standard,
            vintage: issuance.vintage,
            quantity: request.quantity,
            unit_price: request.unit_price,
            actor: principal.subject(),
            now: state.ports.clock.now(),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/listings/{id}"))],
        Json(listing),
    )
        .into_response())
}

/// Reads a listing.
#[utoipa::path(get, path = "/v1/listings/{listingId}", tag = "marketplace", summary = "Get a listing",
    security(("bearer" = []), ("apiKey" = [])),
    params(("listingId" = String, Path, description = "Listing id")),
    responses((status = 200, description = "The listing", body = Listing),
        (status = 404, description = "No such listing for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_listing(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (listing, ours) = state.readable_listing(&principal, &id).await?;
    Ok(Json(if ours {
        serde_json::to_value(listing).map_err(ApiError::unexpected)?
    } else {
        public(listing)
    }))
}

/// Changes a listing's price, pauses, resumes or closes it.
#[utoipa::path(patch, path = "/v1/listings/{listingId}", tag = "marketplace", summary = "Change a listing",
    security(("bearer" = []), ("apiKey" = [])),
    params(("listingId" = String, Path, description = "Listing id")), request_body = ChangeListing,
    description = "Each change is recorded in the listing's history. Closing returns the unsold credits to the developer's inventory in the same write.",
    responses((status = 200, description = "The listing", body = Listing),
        (status = 404, description = "No such listing for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The listing is closed, or its terms changed since `version`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A price in another currency, or nothing to change", body = Problem, content_type = "application/problem+json")))]
pub async fn change_listing(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(request): Json<ChangeListing>,
) -> Result<Json<Listing>, ApiError> {
    if request.unit_price.is_some_and(|p| p.amount().is_zero()) {
        return Err(ApiError::validation(
            "unitPrice.amount",
            "must be more than zero",
        ));
    }
    state.writable_listing(&principal, &id).await?;
    let change = ListingChange {
        unit_price: request.unit_price,
        status: request.status,
        version: request.version,
    };
    Ok(Json(
        state
            .listings()
            .change(&id, &change, &principal.subject(), state.ports.clock.now())
            .await?,
    ))
}

/// A page of a listing's history, oldest first: created, price changes, pauses, resumptions, close.
#[utoipa::path(get, path = "/v1/listings/{listingId}/history", tag = "marketplace", summary = "Listing history",
    security(("bearer" = []), ("apiKey" = [])),
    params(("listingId" = String, Path, description = "Listing id"), PageParams),
    responses((status = 200, description = "The events, oldest first", body = List<ListingEvent>),
        (status = 404, description = "No such listing for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn listing_history(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<ListingEvent>>, ApiError> {
    let page = page.validate()?;
    let (_, ours) = state.readable_listing(&principal, &id).await?;
    if !ours {
        return Err(ApiError::NotFound);
    }
    let (items, next) = state
        .listings()
        .history(&id, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(items, next)))
}

/// A page of a project's listings in every state, oldest first.
#[utoipa::path(get, path = "/v1/projects/{projectId}/listings", tag = "marketplace", summary = "A project's listings",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, description = "Listings, oldest first", body = List<Listing>),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn project_listings(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Listing>>, ApiError> {
    let page = page.validate()?;
    let project = state.readable(&principal, &id).await?;
    if !state.owns(&principal, &project).await? {
        return Err(ApiError::NotFound);
    }
    let (items, next) = state
        .listings()
        .of_project(&id, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(items, next)))
}

/// Records a rating agency's rating of an approved project.
#[utoipa::path(post, path = "/v1/projects/{projectId}/agency-ratings", tag = "marketplace", summary = "Record an agency rating",
    security(("bearer" = [])),
    params(("projectId" = String, Path, description = "Project id")), request_body = NewRating,
    description = "Admins. BeZero and Sylvera grade on `AAA`..`D`; another agency's rating names its scale, best grade first. Shown on the project and filterable in the catalogue (`ratingAgency`, `minRating`).",
    responses((status = 201, description = "The rating", body = AgencyRating),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is not approved, or holds the most ratings it may", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rating that failed its checks", body = Problem, content_type = "application/problem+json")))]
pub async fn record_rating(
    State(state): State<ProjectsState>,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(request): Json<NewRating>,
) -> Result<Response, ApiError> {
    admin(&principal, "record agency ratings")?;
    let problems = ratings::check(&request, state.ports.clock.now().date_naive());
    if !problems.is_empty() {
        return Err(crate::api::invalid(problems));
    }
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound);
    }
    let now = state.ports.clock.now();
    let rating_id = id_for("rat", &principal, &headers);
    let rating = request.into_rating(rating_id, &principal.subject(), now);
    // A retry with the same Idempotency-Key gets the rating it recorded.
    let rating = state.projects().rate(&id, rating, now).await?;
    Ok((StatusCode::CREATED, Json(rating)).into_response())
}
