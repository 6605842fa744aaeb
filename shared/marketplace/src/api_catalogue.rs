//! The public catalogue search (the `api-catalogue` function): `GET /v1/projects`.
//!
//! Public: approved projects are for anyone to find. The search runs over the process's
//! in-memory index ([`crate::catalogue`]), never over the table.

use std::sync::Arc;

use amanar_core::{DepsError, FromDeps, Need, Provide};
use amanar_http::{ApiError, FieldError, HttpFunction, Json, Problem, Query};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalogue::{self, Catalogue, CatalogueItem, Facets, Position, Search, Sort};
use crate::money::Money;
use crate::projects::{Label, Mechanism};
use crate::serial::Standard;

/// What the catalogue handlers use: the process's search index.
#[derive(Clone)]
pub struct CatalogueState {
    pub catalogue: Arc<Catalogue>,
}

impl<D> FromDeps<D> for CatalogueState
where
    D: Provide<Arc<Catalogue>> + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            catalogue: deps.need::<Arc<Catalogue>>().await?,
        })
    }
}

/// The `api-catalogue` function.
pub const CATALOGUE: HttpFunction<CatalogueState> = HttpFunction {
    name: "api-catalogue",
    routes: catalogue_router,
};

fn catalogue_router() -> OpenApiRouter<CatalogueState> {
    OpenApiRouter::new().routes(routes!(search_projects))
}

/// The search's query string. Lists are comma-separated.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words of the name, description or registry id (each must match; two letters or more
    /// match as a prefix).
    pub q: Option<String>,
    /// `VCS`, `GOLD_STANDARD`, `ACR`, `CAR`, `ART`, `PURO`, `ISOMETRIC`, `CERCARBONO`, `NATIVE`.
    pub standard: Option<String>,
    /// ISO 3166-1 alpha-2 codes.
    pub country: Option<String>,
    /// OffsetsDB categories (`forest`, `renewable-energy`, ...).
    pub category: Option<String>,
    /// OffsetsDB project types.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub project_type: Option<String>,
    /// OffsetsDB protocol ids (`vm0015`).
    pub protocol: Option<String>,
    /// `removal` or `avoidance`.
    pub mechanism: Option<String>,
    /// One vintage year.
    pub vintage: Option<i32>,
    pub vintage_from: Option<i32>,
    pub vintage_to: Option<i32>,
    /// Every one of these labels (`ccb`, `ccp`, `corsia_eligible`, `article6_authorised`,
    /// `corresponding_adjustment`).
    pub labels: Option<String>,
    /// Every one of these SDGs.
    pub sdgs: Option<String>,
    /// Unit price bounds, in `currency`.
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    /// ISO 4217; the currency of the price bounds and the price sort (USD by default).
    pub currency: Option<String>,
    /// Tonnes on sale, at least.
    pub min_available: Option<u64>,
    /// Rated by this agency (`bezero`, `sylvera`, ...).
    pub rating_agency: Option<String>,
    /// At this grade or better on `ratingAgency`'s scale.
    pub min_rating: Option<String>,
    /// `newest` (default: `-approved`), `price`, `vintage`, `available`, `rating` (agency
    /// ratings), `stars` (verified buyers' average), `approved`; `-` before one for descending
    /// (`-available`, `-stars`).
    pub sort: Option<String>,
    /// `true` adds counts per category, country, standard and mechanism over the whole result.
    pub facets: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    pub items: Vec<CatalogueItem>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// How many projects match in all.
    pub total: u64,
    /// With `facets=true`.
    pub facets: Option<Facets>,
}

fn list(text: &Option<String>) -> Vec<String> {
    text.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parsed<T: for<'de> Deserialize<'de>>(
    field: &'static str,
    values: Vec<String>,
    problems: &mut Vec<FieldError>,
) -> Vec<T> {
    let mut out = Vec::new();
    for value in values {
        match serde_json::from_value(serde_json::Value::String(value.clone())) {
            Ok(v) => out.push(v),
            Err(_) => problems.push(FieldError::new(
                field,
                format!("{value:?} is not a known value"),
            )),
        }
    }
    out
}

/// The search a query string asks for, every bad part named.
pub fn search_of(params: SearchParams) -> Result<Search, ApiError> {
    let mut problems = Vec::new();
    let limit = amanar_http::pagination::limit(params.limit)?;
    let text = params.q.as_deref().unwrap_or("").trim();
    if text.chars().count() > catalogue::MAX_QUERY_CHARS {
        problems.push(FieldError::new(
            "q",
            format!("must be at most {} characters", catalogue::MAX_QUERY_CHARS),
        ));
    }
    // Each word of the query must match (the index also holds the parts of `VCS1340`).
    let text_words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if text_words.len() > catalogue::MAX_QUERY_WORDS {
        problems.push(FieldError::new(
            "q",
            format!("must hold at most {} words", catalogue::MAX_QUERY_WORDS),
        ));
    }
    let standards: Vec<Standard> = parsed("standard", list(&params.standard), &mut problems);
    let mechanisms: Vec<Mechanism> = parsed("mechanism", list(&params.mechanism), &mut problems);
    let labels: Vec<Label> = parsed("labels", list(&params.labels), &mut problems);
    let mut sdgs = Vec::new();
    for sdg in list(&params.sdgs) {
        match sdg.parse::<u8>() {
            Ok(n) if (1..=17).contains(&n) => sdgs.push(n),
            _ => problems.push(FieldError::new(
                "sdgs",
                format!("{sdg:?} is not an SDG from 1 to 17"),
            )),
        }
    }
    let countries = list(&params.country);
    if let Some(bad) = countries.iter().find(|c| !crate::projects::is_country(c)) {
        problems.push(FieldError::new(
            "country",
            format!("{bad:?} is not an ISO 3166-1 alpha-2 code"),
        ));
    }
    let categories = list(&params.category);
    if let Some(bad) = categories
        .iter()
        .find(|c| !crate::taxonomy::categories().contains(&c.as_str()))
    {
        problems.push(FieldError::new(
            "category",
            format!("{bad:?} is not an OffsetsDB category"),
        ));
    }
    let project_types = list(&params.project_type);
    if let Some(bad) = project_types
        .iter()
        .find(|t| crate::taxonomy::project_type(t).is_none())
    {
        problems.push(FieldError::new(
            "type",
            format!("{bad:?} is not an OffsetsDB project type"),
        ));
    }
    let protocols = list(&params.protocol);
    if let Some(bad) = protocols
        .iter()
        .find(|p| crate::taxonomy::protocol(p).is_none())
    {
        problems.push(FieldError::new(
            "protocol",
            format!("{bad:?} is not an OffsetsDB protocol id"),
        ));
    }
    for (field, year) in [
        ("vintage", params.vintage),
        ("vintageFrom", params.vintage_from),
        ("vintageTo", params.vintage_to),
    ] {
        if year.is_some_and(|y| !(1990..=2100).contains(&y)) {
            problems.push(FieldError::new(field, "must be a year from 1990 to 2100"));
        }
    }
    let (vintage_from, vintage_to) = match (params.vintage, params.vintage_from, params.vintage_to)
    {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            problems.push(FieldError::new(
                "vintage",
                "give vintage, or vintageFrom and vintageTo, not both",
            ));
            (None, None)
        }
        (Some(year), None, None) => (Some(year), Some(year)),
        (None, from, to) => (from, to),
    };
    if let (Some(from), Some(to)) = (vintage_from, vintage_to)
        && from > to
    {
        problems.push(FieldError::new(
            "vintageTo",
            "must not be before vintageFrom",
        ));
    }
    let currency = match params.currency.as_deref() {
        None => None,
        Some(code) => match Money::parse("0", code) {
            Ok(m) => Some(m.currency()),
            Err(e) => {
                problems.push(FieldError::new("currency", e.reason));
                None
            }
        },
    };
    let price = |field: &'static str, text: &Option<String>, problems: &mut Vec<FieldError>| {
        let text = text.as_deref()?;
        match Money::parse(text, currency.unwrap_or("USD")) {
            // A bound is never rounded into a wider range: it must already fit the minor unit.
            Ok(m) if text.trim().parse::<rust_decimal::Decimal>().ok() != Some(m.amount()) => {
                problems.push(FieldError::new(
                    field,
                    format!(
                        "has more decimals than {} has ({})",
                        m.currency(),
                        m.decimals()
                    ),
                ));
                None
            }
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(FieldError::new(field, e.reason));
                None
            }
        }
    };
    let min_price = price("minPrice", &params.min_price, &mut problems);
    let max_price = price("maxPrice", &params.max_price, &mut problems);
    if let (Some(min), Some(max)) = (&min_price, &max_price)
        && min.amount() > max.amount()
    {
        problems.push(FieldError::new("maxPrice", "must not be below minPrice"));
    }
    if params.min_rating.is_some() && params.rating_agency.is_none() {
        problems.push(FieldError::new(
            "minRating",
            "name the agency with ratingAgency",
        ));
    }
    if let (Some(agency), Some(grade)) = (&params.rating_agency, &params.min_rating)
        && crate::ratings::rank_of(&agency.to_lowercase(), grade).is_none()
    {
        problems.push(FieldError::new(
            "minRating",
            format!("{grade:?} is not on {agency}'s scale (the filter knows bezero and sylvera)"),
        ));
    }
    let (sort, descending) = match params.sort.as_deref().unwrap_or("newest") {
        "newest" => (Sort::Approved, true),
        text => {
            let (descending, name) = match text.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, text),
            };
            let sort = match name {
                "price" => Some(Sort::Price),
                "vintage" => Some(Sort::Vintage),
                "available" => Some(Sort::Available),
                "rating" => Some(Sort::Rating),
                "stars" => Some(Sort::Stars),
                "approved" => Some(Sort::Approved),
                _ => None,
            };
            match sort {
                Some(sort) => (sort, descending),
                None => {
                    problems.push(FieldError::new(
                        "sort",
                        "must be newest, price, vintage, available, rating, stars or approved, with - for descending",
                    ));
                    (Sort::Approved, true)
                }
            }
        }
    };
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => match Position::decode(text) {
            Some(p) if p.fits(sort, descending, currency.unwrap_or("USD")) => Some(p),
            _ => {
                problems.push(FieldError::new(
                    "cursor",
                    "is not a cursor of this search's sort",
                ));
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    Ok(Search {
        text: text_words,
        standards,
        countries,
        categories,
        project_types,
        protocols,
        mechanisms,
        labels,
        sdgs,
        vintage_from,
        vintage_to,
        currency,
        min_price,
        max_price,
        min_available: params.min_available,
        rating_agency: params.rating_agency.map(|a| a.to_lowercase()),
        min_rating: params.min_rating,
        sort,
        descending,
        limit,
        after,
        facets: params.facets.unwrap_or(false),
    })
}

/// Searches the public catalogue.
#[utoipa::path(get, path = "/v1/projects", tag = "marketplace", summary = "Search the catalogue",
    params(SearchParams),
    description = "Public. Approved projects with their price ranges, available tonnes, vintages, offers (listings) and agency ratings. Filters combine: all of them must hold; a comma-separated list matches any of its values (all of them for labels and SDGs). A listing's change shows in the next search.",
    responses((status = 200, description = "A page of projects", body = SearchPage),
        (status = 422, description = "A filter that failed its check, named", body = Problem, content_type = "application/problem+json")))]
pub async fn search_projects(
    State(state): State<CatalogueState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchPage>, ApiError> {
    let search = search_of(params)?;
    let found = state.catalogue.search(&search).await?;
    Ok(Json(SearchPage {
        items: found.items,
        next_cursor: found.next.map(|p| p.encode()),
        total: found.total,
        facets: found.facets,
    }))
}
