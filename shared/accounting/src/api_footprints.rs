//! HTTP routes of footprints and activity imports: `POST`/`GET /v1/footprints`,
//! `GET /v1/footprints/{footprintId}`, and `POST`/`GET /v1/orgs/{orgId}/activity-imports[/{importId}]`.

use std::sync::Arc;

use amanar_core::{DepsError, FromDeps, Need, Ports, Provide, new_id};
use amanar_http::{
    ApiError, FieldError, HttpFunction, Json, List, OrgAction, OrgGuard, PageParams, Principal,
    Problem, Query, Scope,
};
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::DecimalText;
use crate::calculation::{Calculation, Entry, FactorChoice, SupplierRate};
use crate::factors::{CalorificBasis, Library};
use crate::footprints::{self, Calculator, Footprint, Owner, SaveError};
use crate::gwp::GwpSet;
use crate::imports::{self, ActivityImport, NewImport};
use crate::period::Period;
use crate::personal::{self, PersonalInput};

/// Most entries one `POST /v1/footprints` may hold (larger sets go through an activity import).
pub const MAX_ENTRIES: usize = 1000;
/// Most problems one refused footprint request lists.
const MAX_LISTED_ERRORS: usize = 100;

const READ_SCOPE: Scope = crate::FOOTPRINTS_READ;
const WRITE_SCOPE: Scope = crate::FOOTPRINTS_WRITE;

/// What footprint and import handlers use: the ports (footprints and their lines, uploads) and
/// the organisation guard.
#[derive(Clone)]
pub struct FootprintsState {
    pub ports: Ports,
    pub guard: Arc<dyn OrgGuard>,
}

impl<D> FromDeps<D> for FootprintsState
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

impl FromRef<FootprintsState> for Ports {
    fn from_ref(state: &FootprintsState) -> Self {
        state.ports.clone()
    }
}

impl FromRef<FootprintsState> for Arc<dyn OrgGuard> {
    fn from_ref(state: &FootprintsState) -> Self {
        state.guard.clone()
    }
}

type Guard = State<Arc<dyn OrgGuard>>;

/// The `api-footprints` function.
pub const FOOTPRINTS: HttpFunction<FootprintsState> = HttpFunction {
    name: "api-footprints",
    routes: footprints_router,
};

/// The `api-activity-imports` function.
pub const IMPORTS: HttpFunction<FootprintsState> = HttpFunction {
    name: "api-activity-imports",
    routes: imports_router,
};

fn footprints_router() -> OpenApiRouter<FootprintsState> {
    OpenApiRouter::new()
        .routes(routes!(create_footprint, list_footprints))
        .routes(routes!(get_footprint))
}

fn imports_router() -> OpenApiRouter<FootprintsState> {
    OpenApiRouter::new()
        .routes(routes!(create_import, list_imports))
        .routes(routes!(get_import))
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// Market-based Scope 2: the supplier's own emission rate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupplierFactorRequest {
    /// kg CO2e per `unit` (zero for a renewable contract with certificates).
    #[schema(value_type = String, example = "0.05")]
    pub co2e_kg: DecimalText,
    #[schema(example = "kWh")]
    pub unit: String,
}

/// One activity of an organisational footprint: the fields of `POST /v1/estimates`, plus how to
/// report it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryRequest {
    /// Your own description, up to 200 characters ("Head office boiler").
    pub label: Option<String>,
    /// Groups lines in `totals.byCategory` (default: the factor's category).
    pub category: Option<String>,
    pub factor_id: Option<String>,
    pub activity_id: Option<String>,
    pub region: Option<String>,
    pub year: Option<u16>,
    pub calorific_basis: Option<CalorificBasis>,
    #[schema(value_type = String, example = "12000")]
    pub amount: DecimalText,
    pub unit: String,
    /// Overrides the factor's GHG Protocol Scope 3 category (1 to 15; scope 3 factors only).
    pub scope3_category: Option<u8>,
    /// The supplier's emission rate, for market-based Scope 2 (scope 2 factors only).
    pub supplier_factor: Option<SupplierFactorRequest>,
}

impl EntryRequest {
    fn entry(&self) -> Entry<'_> {
        Entry {
            label: self.label.as_deref(),
            category: self.category.as_deref(),
            factor: FactorChoice {
                factor_id: self.factor_id.as_deref(),
                activity_id: self.activity_id.as_deref(),
                region: self.region.as_deref(),
                year: self.year,
                calorific_basis: self.calorific_basis,
                unit: &self.unit,
            },
            amount: self.amount.0,
            scope3_category: self.scope3_category,
            supplier_rate: self.supplier_factor.as_ref().map(|s| SupplierRate {
                co2e_kg: s.co2e_kg.0,
                unit: &s.unit,
            }),
            share_of: None,
        }
    }
}

/// A footprint to calculate: a person's (the personal calculator, or entries) or an
/// organisation's (entries), for one period.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateFootprint {
    /// The organisation whose footprint this is; leave out for your own personal footprint.
    pub org_id: Option<String>,
    pub period: Period,
    /// Up to 100 characters.
    pub name: Option<String>,
    /// Restate every line on this GWP set (default: each factor's published set).
    pub gwp_set: Option<GwpSet>,
    /// A current footprint of the same owner that this one corrects; it may overlap it.
    pub replaces: Option<String>,
    /// Activities, 1 to 1000 (more through an activity import). Give `entries` or `personal`.
    pub entries: Option<Vec<EntryRequest>>,
    /// The personal calculator's answers (personal footprints only).
    pub personal: Option<PersonalInput>,
}

/// Where a footprint's lines are: a CSV file, one row per entry with its factor and calculation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinesView {
    pub count: u64,
    /// Columns: line, label, category, scope, scope3Category, co2eKg, marketBasedCo2eKg,
    /// factorId, activityId, source, sourceId, region, year, amount, unit, convertedAmount,
    /// factorUnit, factorValue, gwpSet, shareOf, exact.
    pub csv_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A footprint with its totals and a link to its lines.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FootprintView {
    #[serde(flatten)]
    pub footprint: Footprint,
    pub lines: LinesView,
}

async fn view(ports: &Ports, footprint: Footprint) -> Result<FootprintView, ApiError> {
    let url = footprints::lines_url(ports, &footprint).await?;
    Ok(FootprintView {
        lines: LinesView {
            count: footprint.line_count,
            csv_url: url.url,
            expires_at: url.expires_at,
        },
        footprint,
    })
}

fn created_by(principal: &Principal) -> String {
    match principal {
        Principal::User(caller) => caller.user_id.clone(),
        Principal::Key(key) => amanar_http::scope::key_subject(&key.key_id),
    }
}

/// The owner a request names (an organisation, or the caller), checked for `action`.
async fn owner_for(
    guard: &dyn OrgGuard,
    principal: &Principal,
    org_id: Option<&str>,
    action: OrgAction,
) -> Result<Owner, ApiError> {
    let scope = match action {
        OrgAction::Read => READ_SCOPE,
        OrgAction::Write => WRITE_SCOPE,
    };
    let org_id = match (org_id, principal) {
        (Some(org_id), _) => org_id.to_owned(),
        (None, Principal::User(caller)) => return Ok(Owner::User(caller.user_id.clone())),
        // An API key acts for its own organisation.
        (None, Principal::Key(key)) => key.org_id.clone(),
    };
    guard.authorize(principal, &org_id, action, scope).await?;
    Ok(Owner::Org(org_id))
}

/// Whether the principal may read a footprint; other owners' footprints do not exist for them.
async fn authorize_read(
    guard: &dyn OrgGuard,
    principal: &Principal,
    footprint: &Footprint,
) -> Result<(), ApiError> {
    match (footprint.owner(), principal) {
        (Owner::User(owner), Principal::User(caller)) if owner == caller.user_id => Ok(()),
        (Owner::User(_), _) => Err(ApiError::NotFound),
        (Owner::Org(org_id), _) => {
            guard
                .authorize(principal, &org_id, OrgAction::Read, READ_SCOPE)
                .await
        }
    }
}

fn check_name(name: &Option<String>) -> Result<(), ApiError> {
    match name {
        Some(n) if n.trim().is_empty() || n.chars().count() > 100 => {
            Err(ApiError::validation("name", "must be 1 to 100 characters"))
        }
        _ => Ok(()),
    }
}

/// `replaces` must name a footprint by its id (`fp_` and up to 60 letters, digits or `_`).
fn check_replaces(replaces: &Option<String>) -> Result<(), ApiError> {
    let valid = |id: &str| {
        id.len() <= 64
            && id.strip_prefix("fp_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
    };
    match replaces {
        Some(id) if !valid(id) => Err(ApiError::validation(
            "replaces",
            "must be a footprint id such as fp_01j...",
        )),
        _ => Ok(()),
    }
}

/// The fields a footprint and an import declare alike: the period (returned checked), the name
/// and the footprint it replaces.
fn check_footprint_fields(
    period: Period,
    name: &Option<String>,
    replaces: &Option<String>,
) -> Result<Period, ApiError> {
    let period = period
        .validated()
        .map_err(|message| ApiError::validation("period", message))?;
    check_name(name)?;
    check_replaces(replaces)?;
    Ok(period)
}

fn saved_or_problem(error: SaveError) -> ApiError {
    match error {
        SaveError::Overlap { .. } => ApiError::Conflict {
            slug: "period-overlap",
            detail: error.to_string(),
        },
        SaveError::NotCurrent(_) => ApiError::Conflict {
            slug: "footprint-not-current",
            detail: error.to_string(),
        },
        SaveError::TooMany => ApiError::Conflict {
            slug: "too-many-footprints",
            detail: error.to_string(),
        },
        SaveError::Busy => ApiError::Unavailable(error.to_string()),
        SaveError::Table(e) => e.into(),
        SaveError::Blob(e) => e.into(),
        SaveError::AlreadyExists | SaveError::ConditionFailed(_) => ApiError::unexpected(error),
    }
}

/// Joins a field path and a field relative to it.
fn at(path: &str, field: &str) -> String {
    match (path.is_empty(), field.is_empty()) {
        (_, true) => path.to_owned(),
        (true, false) => field.to_owned(),
        (false, false) => format!("{path}.{field}"),
    }
}

fn refused(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(errors.into_iter().take(MAX_LISTED_ERRORS).collect())
}

// ---------------------------------------------------------------------------------------------
// Footprints

/// Calculates and saves a footprint.
#[utoipa::path(post, path = "/v1/footprints", tag = "carbon accounting", summary = "Create a footprint",
    security(("bearer" = []), ("apiKey" = [])),
    request_body = CreateFootprint,
    description = "Calculates every entry (or the personal calculator's answers) with the factor library, exactly as `POST /v1/estimates` does, and saves the footprint with totals by scope (Scope 2 location- and market-based), Scope 3 category and category. All or nothing: any bad entry is a 422 naming it, and nothing is saved. An owner's footprints never overlap in time; correct one with `replaces`. Accepts `Idempotency-Key`.",
    responses((status = 201, description = "The saved footprint", body = FootprintView),
        (status = 403, description = "The caller's role or key scope is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The period overlaps a current footprint (`period-overlap`), or `replaces` names one that is not current", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad entry or answer, named by its path (`entries[3].unit`)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_footprint(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Json(request): Json<CreateFootprint>,
) -> Result<Response, ApiError> {
    let period = check_footprint_fields(request.period, &request.name, &request.replaces)?;
    let owner = owner_for(
        &*guard,
        &principal,
        request.org_id.as_deref(),
        OrgAction::Write,
    )
    .await?;
    let library = Library::shipped();
    let mut calc = Calculation::new(library, request.gwp_set);
    let mut errors = Vec::new();
    let calculator = match (&request.entries, &request.personal) {
        (Some(entries), None) => {
            if entries.is_empty() || entries.len() > MAX_ENTRIES {
                return Err(ApiError::validation(
                    "entries",
                    format!(
                        "must hold 1 to {MAX_ENTRIES} entries; send more through an activity import"
                    ),
                ));
            }
            for (i, entry) in entries.iter().enumerate() {
                if let Err(e) = calc.add(i as u64 + 1, &entry.entry()) {
                    // The GWP set is the request's, not the entry's: name it, and the entry.
                    let (field, message) = match e.field.as_str() {
                        "gwpSet" => ("gwpSet".to_owned(), format!("entries[{i}]: {}", e.message)),
                        _ => (at(&format!("entries[{i}]"), &e.field), e.message),
                    };
                    errors.push(FieldError::new(field, message));
                }
            }
            Calculator::Entries
        }
        (None, Some(input)) => {
            if matches!(owner, Owner::Org(_)) {
                return Err(ApiError::validation(
                    "personal",
                    "the personal calculator makes personal footprints; leave orgId out, or send entries",
                ));
            }
            let planned = personal::plan(input).map_err(|refusals| {
                refused(
                    refusals
                        .into_iter()
                        .map(|r| FieldError::new(r.field, r.message))
                        .collect(),
                )
            })?;
            for (i, plan) in planned.iter().enumerate() {
                if let Err(e) = calc.add(i as u64 + 1, &plan.entry()) {
                    // Amount and unit are the answer's own; anything else is about the combination
                    // of answers (no published factor for it).
                    let (field, message) = match e.field.as_str() {
                        "amount" | "unit" => (at(&plan.quantity_field, &e.field), e.message),
                        "gwpSet" => ("gwpSet".to_owned(), e.message),
                        _ => (
                            plan.field.clone(),
                            format!(
                                "no published factor fits these answers ({}): {}",
                                plan.activity_id, e.message
                            ),
                        ),
                    };
                    errors.push(FieldError::new(field, message));
                }
            }
            Calculator::Personal
        }
        _ => {
            return Err(ApiError::validation(
                "entries",
                "give entries, or personal (the personal calculator's answers), but not both",
            ));
        }
    };
    if !errors.is_empty() {
        return Err(refused(errors));
    }
    let computed = calc.finish();
    let (org_id, user_id) = match &owner {
        Owner::Org(id) => (Some(id.clone()), None),
        Owner::User(id) => (None, Some(id.clone())),
    };
    let footprint = Footprint {
        id: new_id("fp"),
        org_id,
        user_id,
        name: request.name,
        period,
        calculator,
        import_id: None,
        gwp_set: request.gwp_set,
        library_version: format!("{:x}", library.version()),
        totals: computed.totals,
        line_count: computed.line_count,
        replaces: request.replaces,
        superseded_by: None,
        created_by: created_by(&principal),
        created_at: ports.clock.now(),
    };
    footprints::save(&ports, &footprint, computed.lines_csv.into(), vec![])
        .await
        .map_err(saved_or_problem)?;
    let location = format!("/v1/footprints/{}", footprint.id);
    let body = view(&ports, footprint).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// Which footprints to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FootprintQuery {
    /// An organisation's footprints; leave out for your own (an API key lists its organisation's).
    pub org_id: Option<String>,
    /// Only footprints whose period starts on or after this day.
    #[param(value_type = Option<String>, example = "2020-01-01")]
    pub from: Option<NaiveDate>,
    /// Only footprints whose period starts on or before this day.
    #[param(value_type = Option<String>)]
    pub to: Option<NaiveDate>,
    /// `desc` (default: newest period first) or `asc`.
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The footprint history of a person or an organisation: the current footprint of each period.
#[utoipa::path(get, path = "/v1/footprints", tag = "carbon accounting", summary = "Footprint history",
    security(("bearer" = []), ("apiKey" = [])), params(FootprintQuery),
    responses((status = 200, description = "Current footprints by period", body = List<FootprintView>),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad filter or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_footprints(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Query(query): Query<FootprintQuery>,
) -> Result<Json<List<FootprintView>>, ApiError> {
    let page = PageParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .validate()?;
    let oldest_first = match query.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(ApiError::validation("order", "must be asc or desc")),
    };
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to < from
    {
        return Err(ApiError::validation("to", "is before from"));
    }
    let owner = owner_for(
        &*guard,
        &principal,
        query.org_id.as_deref(),
        OrgAction::Read,
    )
    .await?;
    let (listed, next) = footprints::history(
        &ports,
        &owner,
        query.from,
        query.to,
        oldest_first,
        page.limit,
        page.cursor,
    )
    .await?;
    let mut items = Vec::with_capacity(listed.len());
    for footprint in listed {
        items.push(view(&ports, footprint).await?);
    }
    Ok(Json(List::new(items, next)))
}

/// Reads one footprint, current or superseded.
#[utoipa::path(get, path = "/v1/footprints/{footprintId}", tag = "carbon accounting", summary = "Get a footprint",
    security(("bearer" = []), ("apiKey" = [])),
    params(("footprintId" = String, Path, description = "Footprint id")),
    responses((status = 200, description = "The footprint", body = FootprintView),
        (status = 404, description = "No such footprint for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_footprint(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Path(footprint_id): Path<String>,
) -> Result<Json<FootprintView>, ApiError> {
    let footprint = footprints::get(&ports, &footprint_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    authorize_read(&*guard, &principal, &footprint).await?;
    Ok(Json(view(&ports, footprint).await?))
}

// ---------------------------------------------------------------------------------------------
// Activity imports

/// Declares an activity file to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateImport {
    /// The file's name, for people (1 to 255 characters).
    pub filename: String,
    /// Exact size of the file in bytes (up to 25 MiB); the upload URL accepts only that.
    pub size: u64,
    /// Hex SHA-256 of the file, checked on arrival when given.
    pub sha256: Option<String>,
    pub period: Period,
    pub name: Option<String>,
    pub gwp_set: Option<GwpSet>,
    /// A current footprint of the organisation that the import's footprint corrects.
    pub replaces: Option<String>,
}

pub use amanar_platform::uploads::UploadView;

/// A new import and where to upload its file.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedImport {
    #[serde(flatten)]
    pub import: ActivityImport,
    pub upload: UploadView,
}

/// Starts an activity import: answers with the upload URL for the CSV file.
#[utoipa::path(post, path = "/v1/orgs/{orgId}/activity-imports", tag = "carbon accounting", summary = "Import activities from CSV",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orgId" = String, Path, description = "Organisation id")), request_body = CreateImport,
    description = "Upload the CSV with the returned request (`PUT`, signed content type and length). The file is checked, then calculated by a job: poll the `Location` until `status` is `completed` (with `footprintId`), `failed` (with `errors`: row, field, message) or `rejected`. A file with any bad row imports nothing. Columns: activityId or factorId, amount, unit, and optionally region, year, calorificBasis, label, category, scope3Category, supplierFactor.co2eKg, supplierFactor.unit. Accepts `Idempotency-Key`.",
    responses((status = 202, description = "Waiting for the file", body = CreatedImport),
        (status = 403, description = "The caller's role or key scope is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad declaration", body = Problem, content_type = "application/problem+json")))]
pub async fn create_import(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Path(org_id): Path<String>,
    Json(request): Json<CreateImport>,
) -> Result<Response, ApiError> {
    let period = check_footprint_fields(request.period, &request.name, &request.replaces)?;
    guard
        .authorize(&principal, &org_id, OrgAction::Write, WRITE_SCOPE)
        .await?;
    let (import, upload) = imports::create(
        &ports,
        NewImport {
            org_id: org_id.clone(),
            created_by: created_by(&principal),
            filename: request.filename,
            size: request.size,
            sha256: request.sha256,
            period,
            name: request.name,
            gwp_set: request.gwp_set,
            replaces: request.replaces,
        },
    )
    .await?;
    let location = format!("/v1/orgs/{org_id}/activity-imports/{}", import.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(CreatedImport {
            import,
            upload: upload.into(),
        }),
    )
        .into_response())
}

/// Lists an organisation's activity imports, newest first.
#[utoipa::path(get, path = "/v1/orgs/{orgId}/activity-imports", tag = "carbon accounting", summary = "List activity imports",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "Imports", body = List<ActivityImport>),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn list_imports(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<ActivityImport>>, ApiError> {
    let page = page.validate()?;
    guard
        .authorize(&principal, &org_id, OrgAction::Read, READ_SCOPE)
        .await?;
    let (items, next) = imports::list(&ports, &org_id, page.limit, page.cursor).await?;
    Ok(Json(List::new(items, next)))
}

/// Reads an import: its status, progress, and errors or footprint.
#[utoipa::path(get, path = "/v1/orgs/{orgId}/activity-imports/{importId}", tag = "carbon accounting", summary = "Get an activity import",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), ("importId" = String, Path, description = "Import id")),
    responses((status = 200, description = "The import", body = ActivityImport),
        (status = 404, description = "No such import for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_import(
    State(ports): State<Ports>,
    State(guard): Guard,
    principal: Principal,
    Path((org_id, import_id)): Path<(String, String)>,
) -> Result<Json<ActivityImport>, ApiError> {
    guard
        .authorize(&principal, &org_id, OrgAction::Read, READ_SCOPE)
        .await?;
    let import = imports::get(&ports, &import_id)
        .await?
        .filter(|i| i.org_id == org_id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(import))
}
