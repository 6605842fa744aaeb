//! HTTP routes of verified-buyer ratings (in the `api-projects` function): anyone reads an
//! approved project's ratings and their average; a signed-in user who bought credits of it (a
//! completed order they placed) writes their one rating and may change it.

use amanar_http::{ApiError, Caller, FieldError, Json, PageParams, Principal, Problem, Query};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ProjectsState;
use crate::buyer_ratings::{BuyerRatings, MAX_TEXT, RatingError, RatingSummary, RatingView};
use crate::projects::{Project, Status};

/// A rating to write (or the new version of the caller's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateProject {
    /// 1 to 5.
    pub stars: u8,
    /// What the buyer has to say, at most 2,000 characters (may be empty).
    #[serde(default)]
    pub text: String,
}

/// A page of a project's ratings, with its average and count.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingsPage {
    pub summary: RatingSummary,
    pub items: Vec<RatingView>,
    pub next_cursor: Option<String>,
}

impl From<RatingError> for ApiError {
    fn from(error: RatingError) -> Self {
        match error {
            RatingError::NotBuyer => ApiError::Forbidden {
                slug: "not-a-buyer",
                detail: "Only buyers rate a project: a completed order you placed for its credits is needed.".into(),
            },
            RatingError::Conflict => ApiError::Conflict {
                slug: "edit-conflict",
                detail: "Your rating changed meanwhile (another tab?); send it again.".into(),
            },
            RatingError::Table(e) => e.into(),
        }
    }
}

/// The project, when it is in the public catalogue (ratings of others are 404, as if absent).
async fn public_project(state: &ProjectsState, id: &str) -> Result<Project, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::NotFound);
    }
    match state.projects().get(id).await? {
        Some(project) if project.status == Status::Approved => Ok(project),
        _ => Err(ApiError::NotFound),
    }
}

/// Lists a project's buyer ratings with their average.
#[utoipa::path(get, path = "/v1/projects/{projectId}/ratings", tag = "marketplace", summary = "List a project's buyer ratings",
    params(("projectId" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, description = "The average and count, and a page of ratings", body = RatingsPage),
        (status = 404, description = "No such project in the catalogue", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_ratings(
    State(state): State<ProjectsState>,
    principal: Option<Principal>,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<RatingsPage>, ApiError> {
    let page = page.validate()?;
    let project = public_project(&state, &id).await?;
    let store = BuyerRatings::new(state.ports.table.clone());
    let totals = store.totals(&project.id).await?;
    let (found, next) = store
        .of_project(&project.id, page.limit, page.cursor)
        .await?;
    let caller = match &principal {
        Some(Principal::User(caller)) => Some(caller.user_id.as_str()),
        _ => None,
    };
    Ok(Json(RatingsPage {
        summary: totals.summary(),
        items: found.iter().map(|r| RatingView::of(r, caller)).collect(),
        next_cursor: next.map(|c| c.as_str().to_owned()),
    }))
}

/// Rates a project the caller bought credits of: their first rating (201) or a change (200).
#[utoipa::path(post, path = "/v1/projects/{projectId}/ratings", tag = "marketplace", summary = "Rate a project",
    security(("bearer" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    request_body = RateProject,
    responses((status = 201, description = "The caller's first rating", body = RatingView),
        (status = 200, description = "The caller's rating, changed", body = RatingView),
        (status = 403, description = "The caller has no completed order for the project", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project in the catalogue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's rating changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Stars outside 1 to 5, or a text too long", body = Problem, content_type = "application/problem+json")))]
pub async fn rate_project(
    State(state): State<ProjectsState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<RateProject>,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    if !(1..=5).contains(&body.stars) {
        problems.push(FieldError::new("stars", "must be 1 to 5"));
    }
    let text = body.text.trim();
    if text.chars().count() > MAX_TEXT {
        problems.push(FieldError::new(
            "text",
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        problems.push(FieldError::new("text", "must not hold control characters"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let project = public_project(&state, &id).await?;
    // Its developer's side (the owning user, the owning organisation's members) buys at no cost
    // to itself and must not rate its own project.
    let principal = Principal::User(caller.clone());
    if state.owns(&principal, &project).await? {
        return Err(ApiError::Forbidden {
            slug: "own-project",
            detail: "A project's developer, or a member of the organisation that owns it, does not rate it.".into(),
        });
    }
    let (rating, first) = BuyerRatings::new(state.ports.table.clone())
        .rate(
            &project.id,
            &caller.user_id,
            body.stars,
            text,
            state.ports.clock.now(),
        )
        .await?;
    let status = if first {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(RatingView::of(&rating, Some(&caller.user_id)))).into_response())
}
