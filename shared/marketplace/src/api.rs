//! HTTP routes of projects, their documents and their verification (the `api-projects` function).
//!
//! Who may do what:
//! - a project owned by a user (`USER#<id>`) is drafted by a `project_developer` account and read
//!   and changed by that user alone;
//! - a project owned by an organisation is read by its viewers and up and changed by its members
//!   and up (API keys of the organisation with `projects:read` / `projects:write`);
//! - verifiers (the platform role) read every project, take submitted ones for review and decide,
//!   but never on a project that they or an organisation they belong to own;
//! - anyone else gets 404, as if the project did not exist.

use std::sync::Arc;

use amanar_core::blobs::Bucket;
use amanar_core::context::UploadFollowUp;
use amanar_core::{DepsError, FromDeps, JobError, Need, Ports, Provide, keys, new_id};
use amanar_http::auth::AccountDirectory;
use amanar_http::{
    ApiError, Caller, FieldError, HttpFunction, Json, List, OrgAction, OrgGuard, PageParams,
    Principal, Problem, Query,
};
use amanar_platform::uploads::{self, NewUpload, UploadStatus, UploadView};
use axum::extract::{FromRef, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::issuance::{self, BufferPolicy, IssueRequest, ProjectFacts};
use crate::ledger::{Block, Issuance, Ledger, LedgerError};
use crate::projects::{
    self, Decision, Document, DocumentKind, DocumentState, HistoryEntry, Project, ProjectError,
    ProjectFields, Projects, Status,
};
use crate::serial::Vintage;
use crate::{PROJECTS_READ, PROJECTS_WRITE};

/// The platform role that reviews projects.
pub const VERIFIER: &str = "verifier";
/// The platform role that may also issue credits.
pub const ADMIN: &str = "admin";
/// The upload purpose of project documents.
pub const DOCUMENT_PURPOSE: &str = "project_document";
/// How long a document's download URL stays valid.
const DOWNLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// What the project handlers use.
#[derive(Clone)]
pub struct ProjectsState {
    pub ports: Ports,
    pub guard: Arc<dyn OrgGuard>,
    pub accounts: Arc<dyn AccountDirectory>,
    pub buffer: BufferPolicy,
}

impl<D> FromDeps<D> for ProjectsState
where
    D: Provide<Ports>
        + Provide<Arc<dyn OrgGuard>>
        + Provide<Arc<dyn AccountDirectory>>
        + Provide<BufferPolicy>
        + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            ports: deps.need::<Ports>().await?,
            guard: deps.need::<Arc<dyn OrgGuard>>().await?,
            accounts: deps.need::<Arc<dyn AccountDirectory>>().await?,
            buffer: deps.need::<BufferPolicy>().await?,
        })
    }
}

impl ProjectsState {
    pub(crate) fn projects(&self) -> Projects {
        Projects::new(self.ports.table.clone())
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// Tells a project's owner that a verifier moved it: sends the notice the move wrote to the
    /// outbox with it. A queue that fails now leaves it there for the outbox's sweeper, and the
    /// answer stands.
    async fn tell_owner(&self, project: &Project) {
        let event = crate::projects::status_event(project);
        let (table, queue) = (&*self.ports.table, &*self.ports.queue);
        if let Err(error) = amanar_core::messages::Notify::send_staged(table, queue, &event).await {
            tracing::warn!(project = %project.id, %error, "project status notification left to the outbox's sweeper");
        }
    }

    /// The project, if the principal may read it: its owner's side, or a verifier once it was
    /// submitted (drafts stay private). 404 otherwise, as if it did not exist.
    pub(crate) async fn readable(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Project, ApiError> {
        let project = self.projects().get(id).await?.ok_or(ApiError::NotFound)?;
        let verifier_may = is_verifier(principal) && project.status != Status::Draft;
        if verifier_may || self.owns(principal, &project).await? {
            return Ok(project);
        }
        Err(ApiError::NotFound)
    }

    /// The project, if the principal may change it: 404 to strangers; for a reader without write
    /// rights, the organisation check's own 403 (role or key scope too low).
    pub(crate) async fn writable(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Project, ApiError> {
        self.writable_with(principal, id, PROJECTS_WRITE).await
    }

    /// [`Self::writable`], with the API-key scope the change needs (`listings:write` to sell).
    pub(crate) async fn writable_with(
        &self,
        principal: &Principal,
        id: &str,
        scope: amanar_http::Scope,
    ) -> Result<Project, ApiError> {
        let project = self.readable(principal, id).await?;
        match Owner::of(&project)? {
            Owner::User(user_id) if matches!(principal, Principal::User(c) if c.user_id == user_id) => {
                Ok(project)
            }
            Owner::User(_) => Err(ApiError::Forbidden {
                slug: "owner-only",
                detail: "Only the project's owner may change it.".into(),
            }),
            Owner::Org(org_id) => {
                self.guard
                    .authorize(principal, org_id, OrgAction::Write, scope)
                    .await?;
                Ok(project)
            }
        }
    }

    /// Whether the principal is, or reads for, the project's owner. Any refusal of the
    /// organisation check counts as "no": a stranger learns nothing from a 403.
    pub(crate) async fn owns(
        &self,
        principal: &Principal,
        project: &Project,
    ) -> Result<bool, ApiError> {
        match Owner::of(project)? {
            Owner::User(user_id) => {
                Ok(matches!(principal, Principal::User(c) if c.user_id == user_id))
            }
            Owner::Org(org_id) => {
                match self
                    .guard
                    .authorize(principal, org_id, OrgAction::Read, PROJECTS_READ)
                    .await
                {
                    Ok(()) => Ok(true),
                    Err(ApiError::NotFound | ApiError::Forbidden { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Refuses a principal who has a stake in the project: its owner, a member of the owning
    /// organisation, or anyone who drafted, edited or moved it.
    async fn disinterested(
        &self,
        principal: &Principal,
        project: &Project,
    ) -> Result<(), ApiError> {
        let involved = self.projects().involved(project).await?;
        if self.owns(principal, project).await? || involved.contains(&principal.subject()) {
            return Err(ApiError::Forbidden {
                slug: "own-project",
                detail: "A verifier never reviews or issues for a project that they or their organisation own, or that they worked on.".into(),
            });
        }
        Ok(())
    }

    /// The verifier acting on the project, with no stake in it.
    async fn reviewer(&self, principal: &Principal, project: &Project) -> Result<String, ApiError> {
        verifier(principal)?;
        self.disinterested(principal, project).await?;
        Ok(principal.subject())
    }
}

/// Who owns a project, read from its stored owner (`USER#<id>` or `ORG#<id>`).
enum Owner<'a> {
    User(&'a str),
    Org(&'a str),
}

impl<'a> Owner<'a> {
    fn of(project: &'a Project) -> Result<Self, ApiError> {
        match project.owner.split_once('#') {
            Some(("USER", id)) => Ok(Owner::User(id)),
            Some(("ORG", id)) => Ok(Owner::Org(id)),
            _ => Err(ApiError::unexpected(format!(
                "project {} has owner {:?}",
                project.id, project.owner
            ))),
        }
    }
}

impl FromRef<ProjectsState> for Ports {
    fn from_ref(state: &ProjectsState) -> Self {
        state.ports.clone()
    }
}

/// The admin acting, or 403.
pub(crate) fn admin(principal: &Principal, what: &str) -> Result<(), ApiError> {
    match principal {
        Principal::User(caller) if caller.has_role(ADMIN) => Ok(()),
        _ => Err(ApiError::Forbidden {
            slug: "admin-only",
            detail: format!("Only admins {what}."),
        }),
    }
}

fn is_verifier(principal: &Principal) -> bool {
    verifier(principal).is_ok()
}

fn verifier(principal: &Principal) -> Result<&Caller, ApiError> {
    match principal {
        Principal::User(caller) if caller.has_role(VERIFIER) => Ok(caller),
        _ => Err(ApiError::Forbidden {
            slug: "verifier-only",
            detail: "Only verifiers review projects.".into(),
        }),
    }
}

/// Who did it, as the history records it: the caller's subject (`user:<id>`, `key:<id>`).
fn actor(principal: &Principal) -> String {
    principal.subject()
}

impl From<ProjectError> for ApiError {
    fn from(error: ProjectError) -> Self {
        match error {
            ProjectError::NotFound => ApiError::NotFound,
            ProjectError::State { current } => ApiError::Conflict {
                slug: "project-state",
                detail: format!("The project is {current}; that move is not open to it now."),
            },
            ProjectError::NotYourReview => ApiError::Forbidden {
                slug: "not-your-review",
                detail: "Another verifier took this project for review; only they decide.".into(),
            },
            ProjectError::TooManyRatings => ApiError::Conflict {
                slug: "too-many-ratings",
                detail: format!(
                    "A project holds at most {} agency ratings.",
                    crate::ratings::MAX_RATINGS
                ),
            },
            ProjectError::RatingReused => ApiError::Conflict {
                slug: "idempotency-key-reused",
                detail: "This Idempotency-Key recorded a different rating; use a new key for a new rating.".into(),
            },
            ProjectError::TooManyDocuments => ApiError::Conflict {
                slug: "too-many-documents",
                detail: format!(
                    "A project holds at most {} documents.",
                    projects::MAX_DOCUMENTS
                ),
            },
            ProjectError::Version { current } => ApiError::Conflict {
                slug: "edit-conflict",
                detail: format!(
                    "The project is at version {current}; read it again and edit that version."
                ),
            },
            ProjectError::NoDesignDocument => ApiError::Conflict {
                slug: "design-document-missing",
                detail: "Submitting needs an accepted project-design document: upload one \
                         (POST /v1/projects/{projectId}/documents) and wait for its check."
                    .into(),
            },
            ProjectError::Table(e) => e.into(),
        }
    }
}

pub(crate) fn invalid(problems: Vec<projects::FieldProblem>) -> ApiError {
    ApiError::Validation(
        problems
            .into_iter()
            .map(|p| FieldError::new(p.field, p.message))
            .collect(),
    )
}

/// The `api-projects` function.
pub const PROJECTS: HttpFunction<ProjectsState> = HttpFunction {
    name: "api-projects",
    routes: projects_router,
};

fn projects_router() -> OpenApiRouter<ProjectsState> {
    OpenApiRouter::new()
        .routes(routes!(create_project))
        .routes(routes!(get_project, edit_project))
        .routes(routes!(submit_project))
        .routes(routes!(project_history))
        .routes(routes!(declare_document, list_documents))
        .routes(routes!(download_document))
        .routes(routes!(verification_queue))
        .routes(routes!(my_projects))
        .routes(routes!(org_projects))
        .routes(routes!(take_for_review))
        .routes(routes!(decide))
        .routes(routes!(issue_credits, list_issuances))
        .routes(routes!(crate::api_listings::create_listing))
        .routes(routes!(
            crate::api_listings::get_listing,
            crate::api_listings::change_listing
        ))
        .routes(routes!(crate::api_listings::listing_history))
        .routes(routes!(crate::api_listings::project_listings))
        .routes(routes!(crate::api_listings::record_rating))
        .routes(routes!(
            crate::api_buyer_ratings::list_ratings,
            crate::api_buyer_ratings::rate_project
        ))
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// A new project: its fields, and the organisation that owns it (none: the caller does).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateProject {
    pub org_id: Option<String>,
    #[serde(flatten)]
    pub fields: ProjectFields,
}

/// A project with the state of its documents.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    #[serde(flatten)]
    pub project: Project,
    pub documents: Vec<Document>,
    /// Verified buyers' stars: the average and how many rated.
    pub buyer_ratings: crate::buyer_ratings::RatingSummary,
}

/// A document to upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeclareDocument {
    pub kind: DocumentKind,
    #[schema(example = "project-design.pdf")]
    pub filename: String,
    /// `application/pdf`, `image/png`, `image/jpeg`, `text/csv` or the XLSX type.
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the file, checked when given.
    pub sha256: Option<String>,
}

/// A declared document and where to upload its file.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredDocument {
    #[serde(flatten)]
    pub document: Document,
    pub upload: UploadView,
}

/// A short-lived link to a document's file.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadView {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A verifier's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    pub decision: Decision,
    /// Why, for the developer (required when changes are requested or the project is rejected).
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// `submitted` (default: waiting to be taken) or `under_review`.
    pub status: Option<Status>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Drafts a project.
#[utoipa::path(post, path = "/v1/projects", tag = "marketplace", summary = "Draft a project",
    security(("bearer" = []), ("apiKey" = [])), request_body = CreateProject,
    description = "A `project_developer` account drafts for itself; a member of an organisation (or its API key with `projects:write`) drafts for it with `orgId`. Fields are checked against the OffsetsDB taxonomy. Accepts `Idempotency-Key`.",
    responses((status = 201, description = "The draft", body = Project),
        (status = 403, description = "Not a project developer, or the role or key scope is too low", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that failed their checks, each named", body = Problem, content_type = "application/problem+json")))]
pub async fn create_project(
    State(state): State<ProjectsState>,
    principal: Principal,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let request = create_request(body)?;
    let problems = projects::check(&request.fields);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    // An API key drafts for its own organisation unless it names one.
    let org_id = match (&request.org_id, &principal) {
        (None, Principal::Key(key)) => Some(key.org_id.clone()),
        (org, _) => org.clone(),
    };
    let owner = match (&org_id, &principal) {
        (Some(org_id), _) => {
            state
                .guard
                .authorize(&principal, org_id, OrgAction::Write, PROJECTS_WRITE)
                .await?;
            keys::owner_org(org_id)
        }
        (None, Principal::User(caller)) => {
            let account_type = state.accounts.account_type(&caller.user_id).await?;
            if account_type.as_deref() != Some(PROJECT_DEVELOPER) {
                return Err(ApiError::Forbidden {
                    slug: "project-developer-only",
                    detail: "Only project_developer accounts draft projects of their own; draft for an organisation with orgId.".into(),
                });
            }
            keys::owner_user(&caller.user_id)
        }
        (None, Principal::Key(_)) => unreachable!("a key's organisation is named above"),
    };
    let id = new_id("prj");
    let project = state
        .projects()
        .create(&id, &owner, request.fields, &actor(&principal), state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/projects/{id}"))],
        Json(project),
    )
        .into_response())
}

/// Reads a project with its documents.
#[utoipa::path(get, path = "/v1/projects/{projectId}", tag = "marketplace", summary = "Get a project",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "The project", body = ProjectView),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_project(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let project = state.readable(&principal, &id).await?;
    let documents = state.projects().documents(&id).await?;
    let buyer_ratings = crate::buyer_ratings::BuyerRatings::new(state.ports.table.clone())
        .totals(&id)
        .await?
        .summary();
    Ok(Json(ProjectView {
        project,
        documents,
        buyer_ratings,
    }))
}

/// Changes a draft's fields (or a project whose changes were requested).
#[utoipa::path(patch, path = "/v1/projects/{projectId}", tag = "marketplace", summary = "Edit a project",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    request_body(content = Object, description = "`version` (the one you read) and the fields to change; absent fields stay."),
    responses((status = 200, description = "The project", body = Project),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another version, or a state that is not editable", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that failed their checks", body = Problem, content_type = "application/problem+json")))]
pub async fn edit_project(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(patch): Json<Map<String, Value>>,
) -> Result<Json<Project>, ApiError> {
    let project = state.writable(&principal, &id).await?;
    let mut patch = patch;
    let version = match patch.remove("version") {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        _ => {
            return Err(ApiError::validation(
                "version",
                "the version you edited is required",
            ));
        }
    };
    let fields = merged(&project.fields, patch)?;
    let problems = projects::check(&fields);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(Json(
        state
            .projects()
            .edit(&id, version, fields, &actor(&principal), state.now())
            .await?,
    ))
}

/// A create request from its body: `orgId` and the project fields, an unknown field refused
/// (as PATCH refuses one).
fn create_request(mut body: Map<String, Value>) -> Result<CreateProject, ApiError> {
    let org_id = match body.remove("orgId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(ApiError::validation("orgId", "must be an organisation id")),
    };
    if let Some(unknown) = body.keys().find(|k| !FIELD_NAMES.contains(&k.as_str())) {
        return Err(ApiError::validation(
            unknown.clone(),
            "is not a project field",
        ));
    }
    Ok(CreateProject {
        org_id,
        fields: fields_of(body)?,
    })
}

/// The names of [`ProjectFields`] as clients write them (a test keeps the list whole).
pub const FIELD_NAMES: [&str; 15] = [
    "name",
    "description",
    "category",
    "projectType",
    "protocol",
    "standard",
    "mechanism",
    "issuanceType",
    "country",
    "location",
    "sdgs",
    "labels",
    "permanenceYears",
    "registryProjectId",
    "registryUrl",
];

/// Project fields from a JSON object, a wrong value refused naming its path.
fn fields_of(object: Map<String, Value>) -> Result<ProjectFields, ApiError> {
    serde_path_to_error::deserialize(Value::Object(object))
        .map_err(|e| ApiError::validation(e.path().to_string(), e.inner().to_string()))
}

/// The account type that drafts projects of its own.
const PROJECT_DEVELOPER: &str = "project_developer";

/// The fields with a patch's top-level fields replaced; an unknown field is refused.
fn merged(fields: &ProjectFields, patch: Map<String, Value>) -> Result<ProjectFields, ApiError> {
    let Value::Object(mut current) = serde_json::to_value(fields).map_err(ApiError::unexpected)?
    else {
        return Err(ApiError::unexpected("project fields are an object"));
    };
    for (name, value) in patch {
        if !current.contains_key(&name) {
            return Err(ApiError::validation(name, "is not a project field"));
        }
        current.insert(name, value);
    }
    fields_of(current)
}

/// Submits a project for verification.
#[utoipa::path(post, path = "/v1/projects/{projectId}/submit", tag = "marketplace", summary = "Submit a project",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "The submitted project", body = Project),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft (or changes requested), or no accepted project-design document", body = Problem, content_type = "application/problem+json")))]
pub async fn submit_project(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    state.writable(&principal, &id).await?;
    Ok(Json(
        state
            .projects()
            .submit(&id, &actor(&principal), state.now())
            .await?,
    ))
}

/// The project's moves through verification.
#[utoipa::path(get, path = "/v1/projects/{projectId}/history", tag = "marketplace", summary = "Verification history",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "Every move, oldest first: actor, time, from, to, notes, and the hash chain (seq, prevHash, hash) whose head the project holds (historySeq, historyHash)", body = Vec<HistoryEntry>),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn project_history(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    state.readable(&principal, &id).await?;
    Ok(Json(state.projects().history(&id).await?))
}

/// Declares a document and returns where to upload its file.
#[utoipa::path(post, path = "/v1/projects/{projectId}/documents", tag = "marketplace", summary = "Add a document",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")), request_body = DeclareDocument,
    description = "Upload the file with the returned request. Its type is checked by its first bytes (PDF, PNG, JPEG, CSV or XLSX), with its size and SHA-256; the document then shows `accepted` or `rejected` with a reason.",
    responses((status = 201, description = "The pending document and its upload", body = DeclaredDocument),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project holds the most documents it may", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad declaration", body = Problem, content_type = "application/problem+json")))]
pub async fn declare_document(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(request): Json<DeclareDocument>,
) -> Result<Response, ApiError> {
    let project = state.writable(&principal, &id).await?;
    let projects = state.projects();
    let document_id = new_id("doc");
    let (upload, record) = uploads::prepare(
        &state.ports,
        NewUpload {
            owner: project.owner.clone(),
            purpose: DOCUMENT_PURPOSE.into(),
            reference: Some(format!("{id}/{document_id}")),
            filename: request.filename.clone(),
            content_type: request.content_type,
            size: request.size,
            sha256: request.sha256,
        },
    )?;
    let document = Document {
        id: document_id,
        kind: request.kind,
        filename: request.filename,
        upload_id: upload.id.clone(),
        state: DocumentState::Pending,
        reason: None,
        created_at: state.now(),
    };
    projects
        .declare_document(&id, &document, vec![record])
        .await?;
    let url = uploads::presign(&state.ports, &upload).await?;
    Ok((
        StatusCode::CREATED,
        Json(DeclaredDocument {
            document,
            upload: url.into(),
        }),
    )
        .into_response())
}

/// Lists a project's documents and their states.
#[utoipa::path(get, path = "/v1/projects/{projectId}/documents", tag = "marketplace", summary = "List documents",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "Documents, oldest first", body = Vec<Document>),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn list_documents(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<Document>>, ApiError> {
    state.readable(&principal, &id).await?;
    Ok(Json(state.projects().documents(&id).await?))
}

/// A short-lived link to an accepted document's file, for its owner and verifiers.
#[utoipa::path(get, path = "/v1/projects/{projectId}/documents/{documentId}/download", tag = "marketplace", summary = "Download a document",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id"), ("documentId" = String, Path, description = "Document id")),
    responses((status = 200, description = "A link valid for five minutes", body = DownloadView),
        (status = 404, description = "No such document for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The document was not accepted", body = Problem, content_type = "application/problem+json")))]
pub async fn download_document(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path((id, document_id)): Path<(String, String)>,
) -> Result<Json<DownloadView>, ApiError> {
    state.readable(&principal, &id).await?;
    let document = state
        .projects()
        .document(&id, &document_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if document.state != DocumentState::Accepted {
        return Err(ApiError::Conflict {
            slug: "document-not-accepted",
            detail: "Only a file that passed its check can be downloaded.".into(),
        });
    }
    let upload = uploads::get(&state.ports, &document.upload_id)
        .await?
        .filter(|u| u.status == UploadStatus::Accepted)
        .ok_or_else(|| ApiError::Conflict {
            slug: "document-not-accepted",
            detail: "Only a file that passed its check can be downloaded.".into(),
        })?;
    let link = state
        .ports
        .blobs
        .presign_download(Bucket::Uploads, &upload.object_key(), DOWNLOAD_TTL)
        .await?;
    Ok(Json(DownloadView {
        url: link.url,
        expires_at: link.expires_at,
    }))
}

/// The caller's own projects, oldest first.
#[utoipa::path(get, path = "/v1/me/projects", tag = "marketplace", summary = "List my projects",
    security(("bearer" = [])), params(PageParams),
    responses((status = 200, description = "Projects the caller owns, any status", body = List<Project>)))]
pub async fn my_projects(
    State(state): State<ProjectsState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Project>>, ApiError> {
    let page = page.validate()?;
    let owner = keys::owner_user(&caller.user_id);
    let (items, next) = state
        .projects()
        .of_owner(&owner, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(items, next)))
}

/// An organisation's projects, oldest first.
#[utoipa::path(get, path = "/v1/orgs/{orgId}/projects", tag = "marketplace", summary = "List an organisation's projects",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "Projects the organisation owns, any status", body = List<Project>),
        (status = 403, description = "The key's scope is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn org_projects(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Project>>, ApiError> {
    let page = page.validate()?;
    state
        .guard
        .authorize(&principal, &org_id, OrgAction::Read, PROJECTS_READ)
        .await?;
    let owner = keys::owner_org(&org_id);
    let (items, next) = state
        .projects()
        .of_owner(&owner, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(items, next)))
}

/// Projects waiting for verifiers, oldest first.
#[utoipa::path(get, path = "/v1/verification/queue", tag = "marketplace", summary = "Verification queue",
    security(("bearer" = [])), params(QueueParams),
    responses((status = 200, description = "Projects in the status asked", body = List<Project>),
        (status = 403, description = "Not a verifier", body = Problem, content_type = "application/problem+json")))]
pub async fn verification_queue(
    State(state): State<ProjectsState>,
    principal: Principal,
    Query(params): Query<QueueParams>,
) -> Result<Json<List<Project>>, ApiError> {
    verifier(&principal)?;
    let status = params.status.unwrap_or(Status::Submitted);
    if !matches!(status, Status::Submitted | Status::UnderReview) {
        return Err(ApiError::validation(
            "status",
            "must be submitted or under_review",
        ));
    }
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .validate()?;
    let (items, next) = state
        .projects()
        .queue(status, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(items, next)))
}

/// Takes a submitted project for review.
#[utoipa::path(post, path = "/v1/projects/{projectId}/reviews/take", tag = "marketplace", summary = "Take a project for review",
    security(("bearer" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "The project, under review by the caller", body = Project),
        (status = 403, description = "Not a verifier, or the caller's own project", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not submitted (the detail names its state)", body = Problem, content_type = "application/problem+json")))]
pub async fn take_for_review(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    verifier(&principal)?;
    let project = state.readable(&principal, &id).await?;
    let reviewer = state.reviewer(&principal, &project).await?;
    let taken = state.projects().take(&id, &reviewer, state.now()).await?;
    state.tell_owner(&taken).await;
    Ok(Json(taken))
}

/// Decides on a project under review.
#[utoipa::path(post, path = "/v1/projects/{projectId}/reviews/verification", tag = "marketplace", summary = "Decide on a project",
    security(("bearer" = [])),
    params(("projectId" = String, Path, description = "Project id")), request_body = DecisionRequest,
    responses((status = 200, description = "The project, approved, rejected or sent back for changes", body = Project),
        (status = 403, description = "Not a verifier, or the caller's own project", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not under review (the detail names its state); of two concurrent decisions, the second", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Notes missing or too long", body = Problem, content_type = "application/problem+json")))]
pub async fn decide(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(request): Json<DecisionRequest>,
) -> Result<Json<Project>, ApiError> {
    verifier(&principal)?;
    let notes = request
        .notes
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if notes.as_ref().is_some_and(|n| n.chars().count() > 5000) {
        return Err(ApiError::validation(
            "notes",
            "must be at most 5,000 characters",
        ));
    }
    if request.decision != Decision::Approve && notes.is_none() {
        return Err(ApiError::validation(
            "notes",
            "say what to change, or why the project is rejected",
        ));
    }
    let project = state.readable(&principal, &id).await?;
    let reviewer = state.reviewer(&principal, &project).await?;
    let decided = state
        .projects()
        .decide(&id, &reviewer, request.decision, notes.clone(), state.now())
        .await?;
    state.tell_owner(&decided).await;
    Ok(Json(decided))
}

// ---------------------------------------------------------------------------------------------
// Issuance

/// Credits to issue for an approved project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssueCredits {
    /// A year (`2020`) or a monitoring period (`{"start": "2020-01-01", "end": "2020-12-31"}`).
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    pub quantity: u64,
    /// The registry's serial block, as the registry writes it; none for a `NATIVE` project.
    #[schema(
        example = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
    )]
    pub serial_block: Option<String>,
}

/// A block of an issuance, written as the registry would print it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockView {
    pub serial: String,
    pub first: u64,
    pub last: u64,
    pub quantity: u64,
    /// `issued` (the developer's inventory), `listed`, `reserved`, `held`, `buffer`, `frozen`,
    /// `retired` or `cancelled`.
    #[schema(value_type = String)]
    pub status: crate::ledger::Status,
}

impl BlockView {
    pub fn of(issuance: &Issuance, block: &Block) -> Self {
        BlockView {
            serial: issuance.serial_of(block.range),
            first: block.range.first(),
            last: block.range.last(),
            quantity: block.range.len(),
            status: block.account.status(),
        }
    }
}

/// An issuance with its blocks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceView {
    pub id: String,
    pub project_id: String,
    #[schema(value_type = String)]
    pub standard: crate::serial::Standard,
    /// The whole issued block.
    pub serial: String,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    pub quantity: u64,
    /// Withheld into the buffer pool at issuance.
    pub buffer: u64,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub blocks: Vec<BlockView>,
}

impl IssuanceView {
    fn of(issuance: &Issuance, blocks: &[Block]) -> Self {
        IssuanceView {
            id: issuance.id.clone(),
            project_id: issuance.project_id.clone(),
            standard: issuance.standard,
            serial: issuance.serial_of(issuance.range()),
            vintage: issuance.vintage,
            quantity: issuance.quantity,
            buffer: issuance.buffer,
            issued_by: issuance.issued_by.clone(),
            issued_at: issuance.issued_at,
            blocks: blocks.iter().map(|b| BlockView::of(issuance, b)).collect(),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Overlap {
                claimed, issuance, ..
            } => ApiError::Conflict {
                slug: "serials-already-issued",
                detail: format!(
                    "Serials {claimed} of this block were issued before (issuance {issuance}); a credit is issued once."
                ),
            },
            LedgerError::AlreadyIssued(id) => ApiError::Conflict {
                slug: "already-issued",
                detail: format!("Issuance {id} exists already."),
            },
            LedgerError::Insufficient {
                available,
                requested,
            } => ApiError::Conflict {
                slug: "insufficient-credits",
                detail: format!("{available} credits are available; {requested} were asked for."),
            },
            LedgerError::Final(account) => ApiError::Conflict {
                slug: "credits-final",
                detail: format!("Credits in {account} never move again."),
            },
            LedgerError::TooFragmented { .. }
            | LedgerError::MovementReused(_)
            | LedgerError::Guard { .. } => ApiError::Conflict {
                slug: "ledger-conflict",
                detail: error.to_string(),
            },
            LedgerError::IntoBuffer | LedgerError::Invalid(_) => {
                ApiError::validation("serialBlock", error.to_string())
            }
            LedgerError::Contended => ApiError::Unavailable(error.to_string()),
            LedgerError::Table(e) => e.into(),
        }
    }
}

/// Issues credits for an approved project into the ledger.
#[utoipa::path(post, path = "/v1/projects/{projectId}/issuances", tag = "marketplace", summary = "Issue credits",
    security(("bearer" = [])),
    params(("projectId" = String, Path, description = "Project id")), request_body = IssueCredits,
    description = "Verifiers and admins. A registry project's issuance carries the registry's serial block: its quantity must be end - start + 1, and the project id and vintage it names must be the project's. A NATIVE project's credits get the platform's serials. For forest and land-use projects a buffer-pool share is withheld as its own block. A serial range is issued once across the platform. Accepts `Idempotency-Key`.",
    responses((status = 201, description = "The issuance and its blocks", body = IssuanceView),
        (status = 403, description = "Not a verifier or admin, or the verifier's own project", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such project", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The project is not approved, or the serials were issued before", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The serial block disagrees with the request or the project (the field says which part)", body = Problem, content_type = "application/problem+json")))]
pub async fn issue_credits(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(request): Json<IssueCredits>,
) -> Result<Response, ApiError> {
    let is_admin = matches!(&principal, Principal::User(c) if c.has_role(ADMIN));
    if !is_verifier(&principal) && !is_admin {
        return Err(ApiError::Forbidden {
            slug: "verifier-only",
            detail: "Only verifiers and admins issue credits.".into(),
        });
    }
    let project = state.readable(&principal, &id).await?;
    state.disinterested(&principal, &project).await?;
    if project.status != Status::Approved {
        return Err(ProjectError::State {
            current: project.status.as_str(),
        }
        .into());
    }
    let facts = ProjectFacts {
        id: project.id.clone(),
        standard: project.fields.standard,
        registry_project_id: project.fields.registry_project_id.clone(),
        category: project.fields.category.clone(),
        owner: project.owner.clone(),
    };
    let ask = IssueRequest {
        vintage: request.vintage,
        quantity: request.quantity,
        serial_block: request.serial_block,
    };
    let new = issuance::prepare(
        &facts,
        &ask,
        &state.buffer,
        &new_id("iss"),
        &actor(&principal),
        state.now(),
    )
    .map_err(|e| ApiError::validation(e.field, e.reason))?;
    let ledger = Ledger::new(state.ports.table.clone());
    let issued = ledger.issue(new).await?;
    let blocks = ledger.blocks(&issued.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuanceView::of(&issued, &blocks)),
    )
        .into_response())
}

/// A project's issuances with their blocks.
#[utoipa::path(get, path = "/v1/projects/{projectId}/issuances", tag = "marketplace", summary = "List issuances",
    security(("bearer" = []), ("apiKey" = [])),
    params(("projectId" = String, Path, description = "Project id")),
    responses((status = 200, description = "Issuances, oldest first", body = Vec<IssuanceView>),
        (status = 404, description = "No such project for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn list_issuances(
    State(state): State<ProjectsState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<IssuanceView>>, ApiError> {
    state.readable(&principal, &id).await?;
    let ledger = Ledger::new(state.ports.table.clone());
    let mut views = Vec::new();
    for issued in ledger.issuances_of(&id).await? {
        let blocks = ledger.blocks(&issued.id).await?;
        views.push(IssuanceView::of(&issued, &blocks));
    }
    Ok(Json(views))
}

// ---------------------------------------------------------------------------------------------
// The follow-up of checked document files

/// Settles a project document once the upload check has decided on its file.
pub const DOCUMENT_UPLOAD: UploadFollowUp<Ports> = UploadFollowUp {
    purpose: DOCUMENT_PURPOSE,
    on_checked: |ports, upload_id| Box::pin(on_document_checked(ports, upload_id)),
};

/// The consumer of `upload-checked.v1` for project documents. Idempotent: a document is settled
/// once, and a repeated message finds it settled.
pub async fn on_document_checked(ports: &Ports, upload_id: &str) -> Result<(), JobError> {
    let retry = |e: ProjectError| JobError::Retry(e.to_string());
    let upload = uploads::get(ports, upload_id)
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?
        .ok_or_else(|| JobError::Poison(format!("no upload {upload_id}")))?;
    let Some((project_id, document_id)) =
        upload.reference.as_deref().and_then(|r| r.split_once('/'))
    else {
        return Err(JobError::Poison(format!(
            "upload {upload_id} names no document"
        )));
    };
    let state = match upload.status {
        UploadStatus::Pending => {
            return Err(JobError::Retry("the upload is not checked yet".into()));
        }
        UploadStatus::Accepted => DocumentState::Accepted,
        UploadStatus::Rejected => DocumentState::Rejected,
    };
    if upload.purpose != DOCUMENT_PURPOSE {
        return Err(JobError::Poison(format!(
            "upload {upload_id} is not a project document"
        )));
    }
    Projects::new(ports.table.clone())
        .settle_document(
            project_id,
            document_id,
            upload_id,
            state,
            upload.reason.as_deref(),
            ports.clock.now(),
        )
        .await
        .map_err(retry)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_names_are_the_project_fields() {
        let fields: ProjectFields = serde_json::from_value(serde_json::json!({
            "name": "n", "description": "", "category": "forest",
            "projectType": "avoided forest conversion", "standard": "VCS",
            "mechanism": "avoidance", "issuanceType": "ex_post", "country": "ET",
            "sdgs": [], "labels": []
        }))
        .unwrap();
        let Value::Object(map) = serde_json::to_value(fields).unwrap() else {
            panic!("an object")
        };
        let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut listed = FIELD_NAMES.to_vec();
        names.sort_unstable();
        listed.sort_unstable();
        assert_eq!(names, listed);
    }
}
