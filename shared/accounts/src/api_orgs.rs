//! HTTP routes of organisations, members, invitations and audit logs.

use std::sync::Arc;

use amanar_core::keys;
use amanar_http::{ApiError, Caller, Json, List, PageParams, Principal, Problem, Query};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::Role;
use crate::apikeys::ApiKey;
use crate::audit::AuditEntry;
use crate::members::Member;
use crate::orgs::{Invitation, Org, Orgs};
use crate::service::Accounts;

type OrgsExt = State<Arc<Orgs>>;

/// Routes of the `api-orgs` function.
pub(crate) fn orgs_router() -> OpenApiRouter<crate::AccountsState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(get_org, patch_org))
        .routes(routes!(invite_member, list_members))
        .routes(routes!(patch_member, delete_member))
        .routes(routes!(accept_invitation))
        .routes(routes!(org_audit_log))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

/// Routes of the caller's own invitations and audit log (served by `api-me`).
pub(crate) fn me_extras_router() -> OpenApiRouter<crate::AccountsState> {
    OpenApiRouter::new()
        .routes(routes!(my_invitations))
        .routes(routes!(my_audit_log))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrg {
    pub name: String,
    /// An enterprise organisation the caller administers, to create this one under it.
    pub parent_org_id: Option<String>,
}

/// An organisation and the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    #[serde(flatten)]
    pub org: Org,
    pub role: Role,
    /// Child organisations (enterprises).
    pub children: Vec<Org>,
}

/// Creates an organisation; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/orgs", tag = "accounts", summary = "Create an organisation", security(("bearer" = [])),
    request_body = CreateOrg,
    responses((status = 201, description = "Created", body = OrgView),
        (status = 403, description = "Enterprise account without MFA (`mfa-required`), or a child organisation by a non-enterprise account", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The parent organisation is not the caller's", body = Problem, content_type = "application/problem+json")))]
pub async fn create_org(
    State(orgs): OrgsExt,
    caller: Caller,
    Json(request): Json<CreateOrg>,
) -> Result<impl IntoResponse, ApiError> {
    let org = orgs
        .create(
            &caller.user_id,
            &request.name,
            request.parent_org_id.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgView {
            org,
            role: Role::Owner,
            children: vec![],
        }),
    ))
}

/// Lists the caller's organisations with their role in each.
#[utoipa::path(get, path = "/v1/orgs", tag = "accounts", summary = "My organisations", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "Memberships", body = List<Member>)))]
pub async fn list_orgs(
    State(orgs): OrgsExt,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Member>>, ApiError> {
    let page = page.validate()?;
    let listed = orgs.mine(&caller.user_id, page.limit, page.cursor).await?;
    Ok(Json(List::new(listed.items, listed.next)))
}

/// Reads an organisation. Another tenant's organisation is a 404.
#[utoipa::path(get, path = "/v1/orgs/{orgId}", tag = "accounts", summary = "Get an organisation", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")),
    responses((status = 200, description = "The organisation", body = OrgView),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_org(
    State(orgs): OrgsExt,
    principal: Principal,
    Path(org_id): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    let access = orgs
        .access
        .access_as(&principal, &org_id, Role::Viewer, crate::ORGS_READ)
        .await?;
    let children = orgs.children(&org_id).await?;
    Ok(Json(OrgView {
        org: access.org,
        role: access.role,
        children,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchOrg {
    pub name: String,
}

/// Renames an organisation (owners and admins).
#[utoipa::path(patch, path = "/v1/orgs/{orgId}", tag = "accounts", summary = "Update an organisation", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")), request_body = PatchOrg,
    responses((status = 200, description = "Updated", body = OrgView),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn patch_org(
    State(orgs): OrgsExt,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(request): Json<PatchOrg>,
) -> Result<Json<OrgView>, ApiError> {
    let org = orgs.rename(&caller.user_id, &org_id, &request.name).await?;
    let access = orgs.get(&caller.user_id, &org_id).await?;
    let children = orgs.children(&org_id).await?;
    Ok(Json(OrgView {
        org,
        role: access.role,
        children,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    /// `owner` (owners only), `admin`, `member` or `viewer`.
    pub role: Role,
}

/// Invites someone by email (owners and admins). They accept after logging in.
#[utoipa::path(post, path = "/v1/orgs/{orgId}/members", tag = "accounts", summary = "Invite a member", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")), request_body = InviteRequest,
    responses((status = 201, description = "Invitation sent", body = Invitation),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn invite_member(
    State(orgs): OrgsExt,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(request): Json<InviteRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let invitation = orgs
        .invite(&caller.user_id, &org_id, &request.email, request.role)
        .await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Lists members (any member).
#[utoipa::path(get, path = "/v1/orgs/{orgId}/members", tag = "accounts", summary = "List members", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "Members", body = List<Member>),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn list_members(
    State(orgs): OrgsExt,
    principal: Principal,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<Member>>, ApiError> {
    let page = page.validate()?;
    orgs.access
        .access_as(&principal, &org_id, Role::Viewer, crate::MEMBERS_READ)
        .await?;
    let listed = orgs.members.list(&org_id, page.limit, page.cursor).await?;
    Ok(Json(List::new(listed.items, listed.next)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchMember {
    pub role: Role,
}

/// Changes a member's role (admins for non-owners, owners for everyone; one owner always stays).
#[utoipa::path(patch, path = "/v1/orgs/{orgId}/members/{userId}", tag = "accounts", summary = "Change a member's role", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), ("userId" = String, Path, description = "Member's user id")),
    request_body = PatchMember,
    responses((status = 200, description = "Updated", body = Member),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or member for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave no owner", body = Problem, content_type = "application/problem+json")))]
pub async fn patch_member(
    State(orgs): OrgsExt,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    Json(request): Json<PatchMember>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(
        orgs.members
            .set_role(&caller.user_id, &org_id, &user_id, request.role)
            .await?,
    ))
}

/// Removes a member (admins), or leaves (a member removing themself).
#[utoipa::path(delete, path = "/v1/orgs/{orgId}/members/{userId}", tag = "accounts", summary = "Remove a member", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), ("userId" = String, Path, description = "Member's user id")),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or member for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave no owner", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_member(
    State(orgs): OrgsExt,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    orgs.members
        .remove(&caller.user_id, &org_id, &user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts the invitation to the caller's email.
#[utoipa::path(post, path = "/v1/orgs/{orgId}/invitations/accept", tag = "accounts", summary = "Accept an invitation", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")),
    responses((status = 201, description = "The caller is a member", body = Member),
        (status = 404, description = "No open invitation for the caller's email", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a member", body = Problem, content_type = "application/problem+json")))]
pub async fn accept_invitation(
    State(orgs): OrgsExt,
    caller: Caller,
    Path(org_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let member = orgs.accept(&caller.user_id, &org_id).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub items: Vec<Invitation>,
}

/// Invitations waiting for the caller's email.
#[utoipa::path(get, path = "/v1/me/invitations", tag = "accounts", summary = "My invitations", security(("bearer" = [])),
    responses((status = 200, description = "Open invitations", body = InvitationList)))]
pub async fn my_invitations(
    State(orgs): OrgsExt,
    caller: Caller,
) -> Result<Json<InvitationList>, ApiError> {
    Ok(Json(InvitationList {
        items: orgs.my_invitations(&caller.user_id).await?,
    }))
}

/// The caller's audit log, newest first.
#[utoipa::path(get, path = "/v1/me/audit-log", tag = "accounts", summary = "My audit log", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "Entries, newest first; each holds the hash of the one before", body = List<AuditEntry>)))]
pub async fn my_audit_log(
    State(accounts): State<Arc<Accounts>>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<AuditEntry>>, ApiError> {
    let page = page.validate()?;
    let (entries, next) = accounts
        .audit
        .list(
            &keys::audit_stream_user(&caller.user_id),
            page.limit,
            page.cursor,
        )
        .await?;
    Ok(Json(List::new(entries, next)))
}

/// An organisation's audit log (owners and admins), newest first.
#[utoipa::path(get, path = "/v1/orgs/{orgId}/audit-log", tag = "accounts", summary = "Organisation audit log", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), PageParams),
    responses((status = 200, description = "Entries, newest first", body = List<AuditEntry>),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn org_audit_log(
    State(orgs): OrgsExt,
    State(accounts): State<Arc<Accounts>>,
    principal: Principal,
    Path(org_id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<List<AuditEntry>>, ApiError> {
    let page = page.validate()?;
    orgs.access
        .access_as(&principal, &org_id, Role::Admin, crate::AUDIT_READ)
        .await?;
    let (entries, next) = accounts
        .audit
        .list(&keys::audit_stream_org(&org_id), page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(entries, next)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Any of `orgs:read`, `members:read`, `audit:read`, `estimates:write`, `footprints:read`,
    /// `footprints:write`, `projects:read`, `projects:write`.
    pub scopes: Vec<String>,
}

/// A new key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Send as `X-Api-Key`. Stored only as a hash: it cannot be shown again.
    pub secret: String,
}

/// Creates an API key for the organisation (owners and admins). The response is never stored: a
/// retry with the same `Idempotency-Key` is a 409 `idempotency-replay-withheld`, not a second key.
#[utoipa::path(post, path = "/v1/orgs/{orgId}/api-keys", tag = "accounts", summary = "Create an API key", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")), request_body = CreateApiKey,
    responses((status = 201, description = "The key and its secret (shown once)", body = CreatedApiKey),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name or unknown scope", body = Problem, content_type = "application/problem+json")))]
pub async fn create_api_key(
    State(orgs): OrgsExt,
    caller: Caller,
    Path(org_id): Path<String>,
    Json(request): Json<CreateApiKey>,
) -> Result<impl IntoResponse, ApiError> {
    let (key, secret) = orgs
        .create_key(&caller.user_id, &org_id, &request.name, &request.scopes)
        .await?;
    Ok(amanar_http::carrying_secret((
        StatusCode::CREATED,
        Json(CreatedApiKey { key, secret }),
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
}

/// Lists the organisation's keys, without secrets (owners and admins).
#[utoipa::path(get, path = "/v1/orgs/{orgId}/api-keys", tag = "accounts", summary = "List API keys", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id")),
    responses((status = 200, description = "Keys with their last use", body = ApiKeyList),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn list_api_keys(
    State(orgs): OrgsExt,
    caller: Caller,
    Path(org_id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(ApiKeyList {
        items: orgs.list_keys(&caller.user_id, &org_id).await?,
    }))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(delete, path = "/v1/orgs/{orgId}/api-keys/{keyId}", tag = "accounts", summary = "Revoke an API key", security(("bearer" = [])),
    params(("orgId" = String, Path, description = "Organisation id"), ("keyId" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"),
        (status = 403, description = "The caller's role is too low", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation or active key for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_api_key(
    State(orgs): OrgsExt,
    caller: Caller,
    Path((org_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    orgs.revoke_key(&caller.user_id, &org_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
