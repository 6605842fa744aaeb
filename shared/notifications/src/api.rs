//! HTTP routes of in-app notifications (the `api-notifications` function): a user's own, newest
//! first, and marking one read. Notifications are personal: API keys have none, and another
//! user's notification is 404.

use amanar_core::{Clock, DepsError, FromDeps, Need, Provide, Table};
use amanar_http::{ApiError, Caller, HttpFunction, Json, List, PageParams, Problem, Query};
use axum::extract::{Path, State};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::store::{NotificationView, Notifications};

#[derive(Clone)]
pub struct NotificationsState {
    pub notifications: Notifications,
    pub clock: Arc<dyn Clock>,
}

impl<D> FromDeps<D> for NotificationsState
where
    D: Provide<Arc<dyn Table>> + Provide<Arc<dyn Clock>> + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            notifications: Notifications::new(deps.need::<Arc<dyn Table>>().await?),
            clock: deps.need::<Arc<dyn Clock>>().await?,
        })
    }
}

pub const NOTIFICATIONS: HttpFunction<NotificationsState> = HttpFunction {
    name: "api-notifications",
    routes: router,
};

fn router() -> OpenApiRouter<NotificationsState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(read_notification))
}

/// The longest notification id accepted (`ntf_` and 26 hex digits).
const MAX_ID: usize = 64;

/// Lists the caller's notifications, newest first.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", summary = "List notifications",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of notifications, newest first; `readAt` is null while unread", body = List<NotificationView>),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_notifications(
    State(state): State<NotificationsState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<List<NotificationView>>, ApiError> {
    let page = page.validate()?;
    let (found, next) = state
        .notifications
        .of_user(&caller.user_id, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(
        found.into_iter().map(NotificationView::from).collect(),
        next,
    )))
}

/// Marks one of the caller's notifications read (again: no change).
#[utoipa::path(post, path = "/v1/notifications/{notificationId}/read", tag = "notifications", summary = "Mark a notification read",
    security(("bearer" = [])),
    params(("notificationId" = String, Path, description = "Notification id")),
    responses((status = 200, description = "The notification, with the time it was first read", body = NotificationView),
        (status = 404, description = "No such notification of the caller", body = Problem, content_type = "application/problem+json")))]
pub async fn read_notification(
    State(state): State<NotificationsState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NotificationView>, ApiError> {
    if id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ApiError::NotFound);
    }
    let read = state
        .notifications
        .read(&caller.user_id, &id, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(read.into()))
}
