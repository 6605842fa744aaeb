//! HTTP routes of the factor library and estimates: `GET /v1/emission-factors[/{factorId}]`,
//! `GET /v1/units`, `POST /v1/estimates` and `POST /v1/estimates/batch`.

use amanar_http::{ApiError, FieldError, HttpFunction, Json, Prepared, Principal, Problem, Query};
use axum::extract::Path;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::calculation::{FactorChoice, estimate_error, resolve};
use crate::estimate::{Estimate, GasAmount};
use crate::factors::{
    CalorificBasis, Factor, Filter, GasBasis, Library, Scope, Source, SourceInfo,
};
use crate::gwp::GwpSet;
use crate::units::UnitType;

/// Most items one batch request may hold.
pub const MAX_BATCH: usize = 100;

/// The `api-emission-factors` function: the library and the units it uses. Public, and needs
/// nothing but the compiled-in library.
pub const FACTORS: HttpFunction<()> = HttpFunction {
    name: "api-emission-factors",
    routes: factors_router,
};

/// The `api-estimates` function.
pub const ESTIMATES: HttpFunction<()> = HttpFunction {
    name: "api-estimates",
    routes: estimates_router,
};

fn factors_router() -> OpenApiRouter<()> {
    OpenApiRouter::new()
        .routes(routes!(list_factors))
        .routes(routes!(get_factor))
        .routes(routes!(list_units))
}

fn estimates_router() -> OpenApiRouter<()> {
    OpenApiRouter::new()
        .routes(routes!(create_estimate))
        .routes(routes!(create_estimate_batch))
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// Per-gas values of a factor, per unit, as the source publishes them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorGases {
    /// `co2e`: each value is kg CO2e of that gas on the factor's GWP set; `mass`: kg of the gas.
    pub basis: GasBasis,
    #[schema(value_type = Option<String>)]
    pub co2: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub ch4: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub n2o: Option<Decimal>,
}

/// An emission factor with everything needed to trace it to its source.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorView {
    pub id: String,
    /// Stable across years and regions for the same activity; `POST /v1/estimates` accepts it with
    /// a region and year instead of a factor id.
    pub activity_id: String,
    pub name: String,
    pub category: String,
    pub source: Source,
    /// The factor's identifier in its source publication (DESNZ flat-file ID, EPA fuel or eGRID
    /// subregion, NAICS code).
    pub source_id: String,
    pub source_dataset: &'static SourceInfo,
    pub year: u16,
    pub region: String,
    pub scope: Scope,
    /// GHG Protocol Scope 3 category (1 to 15) of a Scope 3 factor.
    pub scope3_category: Option<u8>,
    pub unit_type: UnitType,
    /// kg CO2e per one of this unit.
    pub unit: &'static str,
    pub calorific_basis: Option<CalorificBasis>,
    /// Total kg CO2e per unit, as published, on `gwpSet`.
    #[schema(value_type = String, example = "0.182928926174497")]
    pub co2e_kg: Decimal,
    pub gases: Option<FactorGases>,
    /// GWP set of the published total.
    pub gwp_set: GwpSet,
    /// GWP sets an estimate may ask for (AR6 needs a per-gas breakdown that covers the total).
    pub gwp_sets: Vec<GwpSet>,
    pub notes: String,
}

impl From<&Factor> for FactorView {
    fn from(f: &Factor) -> Self {
        FactorView {
            id: f.id.clone(),
            activity_id: f.activity_id.clone(),
            name: f.name.clone(),
            category: f.category.clone(),
            source: f.source,
            source_id: f.source_id.clone(),
            source_dataset: f.source.info(),
            year: f.year,
            region: f.region.clone(),
            scope: f.scope,
            scope3_category: f.scope3_category,
            unit_type: f.unit.unit_type,
            unit: f.unit.symbol,
            calorific_basis: f.calorific_basis,
            co2e_kg: f.co2e_kg,
            gases: f.gases.map(|g| FactorGases {
                basis: g.basis,
                co2: g.co2,
                ch4: g.ch4,
                n2o: g.n2o,
            }),
            gwp_set: f.gwp_set,
            gwp_sets: f.gwp_sets(),
            notes: f.notes.clone(),
        }
    }
}

/// One page of factors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorList {
    pub items: Vec<FactorView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Search parameters of `GET /v1/emission-factors`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FactorQuery {
    /// Words that must all appear in the factor's name, category, activity id, source id or notes.
    pub q: Option<String>,
    /// `desnz`, `epa_hub` or `useeio`.
    pub source: Option<String>,
    /// ISO 3166 code such as `GB` or `US`, or an eGRID subregion such as `US-CAMX`.
    pub region: Option<String>,
    pub year: Option<u16>,
    /// One of the unit types of `GET /v1/units`.
    pub unit_type: Option<String>,
    /// `1`, `2`, `3` or `outside`.
    pub scope: Option<String>,
    /// Identifier in the source publication, e.g. `1_100_1004_6_1`, `CAMX`, `221100`.
    pub source_id: Option<String>,
    pub activity_id: Option<String>,
    /// How many factors to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

fn choice<T>(
    value: Option<&str>,
    field: &str,
    parse: impl Fn(&str) -> Option<T>,
    accepted: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let text = value?;
    let parsed = parse(text);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            format!("must be one of: {accepted}"),
        ));
    }
    parsed
}

impl FactorQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let mut errors = Vec::new();
        let filter = Filter {
            source: choice(
                self.source.as_deref(),
                "source",
                Source::parse,
                "desnz, epa_hub, useeio",
                &mut errors,
            ),
            unit_type: choice(
                self.unit_type.as_deref(),
                "unitType",
                UnitType::parse,
                &UnitType::ALL.map(UnitType::as_str).join(", "),
                &mut errors,
            ),
            scope: choice(
                self.scope.as_deref(),
                "scope",
                Scope::parse,
                "1, 2, 3, outside",
                &mut errors,
            ),
            region: self.region.clone(),
            year: self.year,
            source_id: self.source_id.clone(),
            activity_id: self.activity_id.clone(),
            words: Vec::new(),
        }
        .with_text(self.q.as_deref().unwrap_or(""));
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// A position in the library, bound to the library edition it came from.
fn encode_cursor(library: &Library, position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("f1:{:x}:{position}", library.version()))
}

fn decode_cursor(library: &Library, cursor: &str) -> Result<usize, ApiError> {
    let invalid = || {
        ApiError::validation(
            "cursor",
            "is not a cursor of this list; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("f1"), Some(version), Some(position))
            if version == format!("{:x}", library.version()) =>
        {
            position.parse().map_err(|_| invalid())
        }
        _ => Err(invalid()),
    }
}

/// Searches the emission-factor library.
#[utoipa::path(get, path = "/v1/emission-factors", tag = "carbon accounting",
    summary = "Search emission factors", params(FactorQuery),
    description = "Factors from UK DESNZ 2023, the US EPA GHG Emission Factors Hub 2023 and 2024, and USEEIO v1.2 spend factors, each traceable to its source row by `sourceId`. Every given parameter must match.",
    responses((status = 200, description = "One page of factors", body = FactorList),
        (status = 422, description = "An unknown filter value or a bad cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_factors(Query(query): Query<FactorQuery>) -> Result<Json<FactorList>, ApiError> {
    let library = Library::shipped();
    let filter = query.filter()?;
    let limit = amanar_http::pagination::limit(query.limit)?;
    let from = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(cursor) => decode_cursor(library, cursor)?,
    };
    let (factors, next) = library.search(&filter, from, limit);
    Ok(Json(FactorList {
        items: factors.into_iter().map(FactorView::from).collect(),
        next_cursor: next.map(|position| encode_cursor(library, position)),
    }))
}

/// Reads one emission factor.
#[utoipa::path(get, path = "/v1/emission-factors/{factorId}", tag = "carbon accounting",
    summary = "Get an emission factor", params(("factorId" = String, Path, description = "Factor id")),
    responses((status = 200, description = "The factor", body = FactorView),
        (status = 404, description = "No factor has this id", body = Problem, content_type = "application/problem+json")))]
pub async fn get_factor(Path(factor_id): Path<String>) -> Result<Json<FactorView>, ApiError> {
    Library::shipped()
        .get(&factor_id)
        .map(|f| Json(f.into()))
        .ok_or(ApiError::NotFound)
}

/// One unit of measure.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitView {
    pub symbol: &'static str,
    pub name: &'static str,
    /// Other spellings accepted on input.
    pub aliases: &'static [&'static str],
    /// Exact size in the type's base unit.
    #[schema(value_type = String)]
    pub in_base_unit: Decimal,
}

/// A unit type and the units it accepts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitTypeView {
    pub unit_type: UnitType,
    /// The unit every other one is expressed in; counts have none, as they never convert.
    pub base_unit: Option<&'static str>,
    pub units: Vec<UnitView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitList {
    pub items: Vec<UnitTypeView>,
}

/// Lists the unit types and the unit symbols each accepts.
#[utoipa::path(get, path = "/v1/units", tag = "carbon accounting", summary = "List units",
    description = "Units convert exactly within a type (and counts only to themselves). An estimate's unit must be of its factor's type.",
    responses((status = 200, description = "Every unit type with its units", body = UnitList)))]
pub async fn list_units() -> Response {
    // The list depends only on the compiled-in units: serialised once, shared by every response.
    static UNITS: Prepared = Prepared::new();
    UNITS.json(unit_list)
}

fn unit_list() -> UnitList {
    let items = UnitType::ALL
        .into_iter()
        .map(|t| UnitTypeView {
            unit_type: t,
            base_unit: (t != UnitType::Count)
                .then(|| t.units().find(|u| u.size() == Decimal::ONE))
                .flatten()
                .map(|u| u.symbol),
            units: t
                .units()
                .map(|u| UnitView {
                    symbol: u.symbol,
                    name: u.name,
                    aliases: u.aliases,
                    in_base_unit: u.size().normalize(),
                })
                .collect(),
        })
        .collect();
    UnitList { items }
}

// ---------------------------------------------------------------------------------------------
// Estimates

/// A decimal sent as a JSON string, so that no binary floating point touches it.
#[derive(Debug, Clone, Copy)]
pub struct DecimalText(pub Decimal);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DecimalText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal string such as \"12.5\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DecimalText, E> {
                crate::activity_csv::parse_decimal(text)
                    .map(DecimalText)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// What to estimate: an amount of an activity, and either a factor id or an activity id (with an
/// optional region, year and calorific basis) to find the factor by.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EstimateRequest {
    pub factor_id: Option<String>,
    pub activity_id: Option<String>,
    /// With `activityId`: the factor's region (required when the activity has several).
    pub region: Option<String>,
    /// With `activityId`: the factor's year (default: the latest).
    pub year: Option<u16>,
    /// With `activityId`: for energy amounts, `gross` (default) or `net` calorific value.
    pub calorific_basis: Option<CalorificBasis>,
    /// A decimal string, zero or more.
    #[schema(value_type = String, example = "1000")]
    pub amount: DecimalText,
    /// A unit symbol of `GET /v1/units`, of the factor's unit type.
    pub unit: String,
    /// `AR5` (default, what the sources publish) or `AR6`.
    pub gwp_set: Option<GwpSet>,
}

/// The factor an estimate used.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorSummary {
    pub id: String,
    pub activity_id: String,
    pub name: String,
    pub source: Source,
    pub source_id: String,
    pub year: u16,
    pub region: String,
    pub scope: Scope,
    pub scope3_category: Option<u8>,
    pub unit: &'static str,
    pub calorific_basis: Option<CalorificBasis>,
    #[schema(value_type = String)]
    pub co2e_kg: Decimal,
    pub gwp_set: GwpSet,
}

/// One gas's share of an estimate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GasView {
    /// Mass of the gas itself, when the source gives masses.
    #[schema(value_type = Option<String>)]
    pub kg: Option<Decimal>,
    #[schema(value_type = String)]
    pub co2e_kg: Decimal,
}

/// Per-gas shares of an estimate, on the estimate's GWP set.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GasesView {
    pub co2: Option<GasView>,
    pub ch4: Option<GasView>,
    pub n2o: Option<GasView>,
}

/// How an estimate was calculated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Calculation {
    #[schema(value_type = String)]
    pub amount: Decimal,
    pub unit: &'static str,
    /// The amount in the factor's unit.
    #[schema(value_type = String)]
    pub converted_amount: Decimal,
    pub factor_unit: &'static str,
    /// kg CO2e per factor unit on `gwpSet`.
    #[schema(value_type = String)]
    pub factor_value: Decimal,
    pub gwp_set: GwpSet,
    /// e.g. `1000 kWh × 0.182928926174497 kg CO2e/kWh`.
    pub formula: String,
    /// True when `co2eKg` is the exact result; false when a conversion or GWP restatement has a
    /// non-terminating decimal expansion and was rounded at the 28th significant digit.
    pub exact: bool,
}

/// The emissions of an activity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EstimateView {
    #[schema(value_type = String, example = "182.928926174497")]
    pub co2e_kg: Decimal,
    pub gases: Option<GasesView>,
    pub factor: FactorSummary,
    pub calculation: Calculation,
}

fn gas_view(gas: Option<GasAmount>) -> Option<GasView> {
    gas.map(|g| GasView {
        kg: g.kg,
        co2e_kg: g.co2e_kg,
    })
}

impl From<Estimate<'_>> for EstimateView {
    fn from(e: Estimate<'_>) -> Self {
        let f = e.factor;
        let formula = if std::ptr::eq(e.unit, f.unit) {
            format!(
                "{} {} × {} kg CO2e/{}",
                e.amount, f.unit, e.factor_value, f.unit
            )
        } else {
            format!(
                "{} {} = {} {}; × {} kg CO2e/{}",
                e.amount, e.unit, e.converted_amount, f.unit, e.factor_value, f.unit
            )
        };
        EstimateView {
            co2e_kg: e.co2e_kg,
            gases: e.gases.map(|g| GasesView {
                co2: gas_view(g.co2),
                ch4: gas_view(g.ch4),
                n2o: gas_view(g.n2o),
            }),
            factor: FactorSummary {
                id: f.id.clone(),
                activity_id: f.activity_id.clone(),
                name: f.name.clone(),
                source: f.source,
                source_id: f.source_id.clone(),
                year: f.year,
                region: f.region.clone(),
                scope: f.scope,
                scope3_category: f.scope3_category,
                unit: f.unit.symbol,
                calorific_basis: f.calorific_basis,
                co2e_kg: f.co2e_kg,
                gwp_set: f.gwp_set,
            },
            calculation: Calculation {
                amount: e.amount,
                unit: e.unit.symbol,
                converted_amount: e.converted_amount,
                factor_unit: f.unit.symbol,
                factor_value: e.factor_value,
                gwp_set: e.gwp_set,
                formula,
                exact: e.exact,
            },
        }
    }
}

/// Runs one estimate request against the library. Field names in errors are relative to the item.
pub fn run_estimate<'l>(
    library: &'l Library,
    request: &EstimateRequest,
) -> Result<Estimate<'l>, Vec<FieldError>> {
    let choice = FactorChoice {
        factor_id: request.factor_id.as_deref(),
        activity_id: request.activity_id.as_deref(),
        region: request.region.as_deref(),
        year: request.year,
        calorific_basis: request.calorific_basis,
        unit: &request.unit,
    };
    let (factor, unit) = resolve(library, &choice).map_err(|e| vec![e])?;
    let gwp_set = request.gwp_set.unwrap_or(factor.gwp_set);
    crate::estimate::estimate(factor, request.amount.0, unit, gwp_set)
        .map_err(|e| vec![estimate_error(factor, e)])
}

/// Estimates are for signed-in users and for API keys with the `estimates:write` scope: they are
/// counted against the caller's rate limit like every authenticated call.
fn may_estimate(principal: &Principal) -> Result<(), ApiError> {
    amanar_http::require_scope(principal, crate::ESTIMATES_WRITE)
}

/// Estimates the emissions of one activity.
#[utoipa::path(post, path = "/v1/estimates", tag = "carbon accounting", summary = "Estimate emissions",
    security(("bearer" = []), ("apiKey" = [])),
    request_body = EstimateRequest,
    description = "Multiplies the amount, converted exactly to the factor's unit, by the factor. The response shows the factor and every step of the calculation. Needs a bearer token, or an API key with the `estimates:write` scope.",
    responses((status = 200, description = "The estimate", body = EstimateView),
        (status = 401, description = "No valid token or API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An API key without `estimates:write`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown factor, a unit of the wrong type (the problem names the accepted units), a negative amount or an unavailable GWP set", body = Problem, content_type = "application/problem+json")))]
pub async fn create_estimate(
    principal: Principal,
    Json(request): Json<EstimateRequest>,
) -> Result<Json<EstimateView>, ApiError> {
    may_estimate(&principal)?;
    run_estimate(Library::shipped(), &request)
        .map(|e| Json(e.into()))
        .map_err(ApiError::Validation)
}

/// Up to 100 estimates in one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 100 estimate requests; each is validated on its own.
    #[schema(value_type = Vec<EstimateRequest>)]
    pub items: Vec<serde_json::Value>,
}

/// The outcome of one item of a batch: an estimate, or the problem that item has.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchItem {
    pub index: usize,
    /// 200 for an estimate, 422 for an item that cannot be estimated.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<EstimateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// Results in request order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub items: Vec<BatchItem>,
    /// Sum of the estimates that succeeded.
    #[schema(value_type = String)]
    pub total_co2e_kg: Decimal,
    pub succeeded: usize,
    pub failed: usize,
}

fn batch_item(library: &Library, index: usize, value: serde_json::Value) -> BatchItem {
    let outcome = amanar_http::extract::parse_value::<EstimateRequest>(value)
        .and_then(|request| run_estimate(library, &request).map_err(ApiError::Validation));
    match outcome {
        Ok(estimate) => BatchItem {
            index,
            status: 200,
            estimate: Some(estimate.into()),
            error: None,
        },
        Err(error) => {
            let error = match error {
                ApiError::Validation(errors) => ApiError::Validation(
                    errors
                        .into_iter()
                        .map(|e| {
                            let field = if e.field.is_empty() {
                                format!("items[{index}]")
                            } else {
                                format!("items[{index}].{}", e.field)
                            };
                            FieldError::new(field, e.message)
                        })
                        .collect(),
                ),
                other => other,
            };
            BatchItem {
                index,
                status: error.status().as_u16(),
                estimate: None,
                error: Some(error.to_problem()),
            }
        }
    }
}

/// Estimates up to 100 activities at once. Each item succeeds or fails on its own; the results
/// keep the request's order.
#[utoipa::path(post, path = "/v1/estimates/batch", tag = "carbon accounting", summary = "Estimate a batch",
    security(("bearer" = []), ("apiKey" = [])),
    request_body = BatchRequest,
    responses((status = 200, description = "One result per item, in order", body = BatchResponse),
        (status = 401, description = "No valid token or API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An API key without `estimates:write`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No items, or more than 100", body = Problem, content_type = "application/problem+json")))]
pub async fn create_estimate_batch(
    principal: Principal,
    Json(request): Json<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    may_estimate(&principal)?;
    if request.items.is_empty() || request.items.len() > MAX_BATCH {
        return Err(ApiError::validation(
            "items",
            format!("must hold 1 to {MAX_BATCH} estimates"),
        ));
    }
    let library = Library::shipped();
    let items: Vec<BatchItem> = request
        .items
        .into_iter()
        .enumerate()
        .map(|(index, value)| batch_item(library, index, value))
        .collect();
    let total_co2e_kg = items
        .iter()
        .filter_map(|i| i.estimate.as_ref())
        .try_fold(Decimal::ZERO, |sum, e| sum.checked_add(e.co2e_kg))
        .ok_or_else(|| {
            ApiError::validation(
                "items",
                "the estimates add up to more than a decimal holds (7.9e28); split the batch",
            )
        })?
        .normalize();
    let succeeded = items.iter().filter(|i| i.estimate.is_some()).count();
    Ok(Json(BatchResponse {
        failed: items.len() - succeeded,
        succeeded,
        items,
        total_co2e_kg,
    }))
}
