//! Notifications in the table: one record per event and user, written once however often the
//! event's message arrives, which is also the delivery log of its email.

use std::sync::Arc;

use amanar_core::messages::{NotificationKind, Notify};
use amanar_core::table::{Condition, Index, Query, Table, TableError, Update, WriteOp, items};
use amanar_core::{Cursor, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// What became of a notification's email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    /// To send (or sent, with the crash before this record said so: sent again).
    Pending,
    Sent,
    /// The provider refused it (an unverified sender, a suppressed address); not retried.
    Refused,
    /// The user turned email off.
    Off,
}

/// One notification of one user, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub notification_id: String,
    pub user_id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// The API path of what it is about.
    pub link: Option<String>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the user marked it read.
    pub read_at: Option<DateTime<Utc>>,
    /// Whether it shows in the app (the user's `inApp` preference when it arrived).
    pub in_app: bool,
    pub email: EmailState,
}

/// A notification as its user reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationView {
    pub notification_id: String,
    /// `order_completed`, `payment_failed`, `order_expired`, `retirement_completed`,
    /// `project_status_changed`.
    #[schema(value_type = String)]
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// The API path of what it is about.
    pub link: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the user marked it read; `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            notification_id: n.notification_id,
            kind: n.kind,
            title: n.title,
            body: n.body,
            link: n.link,
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// The id of the notification of `event` for `user_id`: the same for every copy of the message.
pub fn notification_id(event: &str, user_id: &str) -> String {
    let digest = Sha256::digest(format!("notification\0{event}\0{user_id}"));
    format!("ntf_{}", &hex::encode(digest)[..26])
}

#[derive(Clone)]
pub struct Notifications {
    table: Arc<dyn Table>,
}

impl Notifications {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn get(&self, notification_id: &str) -> Result<Option<Notification>, TableError> {
        match self.table.get(&keys::notification(notification_id)).await? {
            Some(item) => Ok(Some(items::parse(item)?)),
            None => Ok(None),
        }
    }

    /// The notification of `message` for `user_id`: written now, or the one an earlier copy of
    /// the message wrote.
    pub async fn record(
        &self,
        message: &Notify,
        user_id: &str,
        in_app: bool,
        email: bool,
    ) -> Result<Notification, TableError> {
        let notification = Notification {
            notification_id: notification_id(&message.event, user_id),
            user_id: user_id.to_owned(),
            kind: message.kind,
            title: message.title.clone(),
            body: message.body.clone(),
            link: message.link.clone(),
            created_at: message.at,
            read_at: None,
            in_app,
            email: if email {
                EmailState::Pending
            } else {
                EmailState::Off
            },
        };
        let key = keys::notification(&notification.notification_id);
        let mut item = items::with_key(&key, &notification)?;
        if in_app {
            keys::notification_of_user(user_id, message.at, &notification.notification_id)
                .insert_into(&mut item);
        }
        match self
            .table
            .write(vec![WriteOp::put(item).when(Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(notification),
            Err(TableError::ConditionFailed { .. }) => self
                .get(&notification.notification_id)
                .await?
                .ok_or_else(|| TableError::Backend("a notification vanished".into())),
            Err(e) => Err(e),
        }
    }

    /// Records what became of the email (only from `pending`, so a late copy never undoes it).
    pub async fn emailed(
        &self,
        notification_id: &str,
        state: EmailState,
    ) -> Result<(), TableError> {
        let value = serde_json::to_value(state).map_err(|e| TableError::Backend(e.to_string()))?;
        let write = WriteOp::update(
            keys::notification(notification_id),
            Update::new().set("email", value.as_str().unwrap_or_default()),
        )
        .when(Condition::Equals("email".into(), "pending".into()));
        match self.table.write(vec![write]).await {
            Ok(()) | Err(TableError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A user's in-app notifications, newest first.
    pub async fn of_user(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Notification>, Option<Cursor>), TableError> {
        let query = Query::partition(Index::Gsi1, keys::notifications_of(user_id))
            .backward()
            .limit(limit)
            .after(cursor);
        items::parse_page(self.table.query(&query).await?)
    }

    /// Marks a user's notification read (the first time only). `None`: not theirs, or not shown
    /// in the app.
    pub async fn read(
        &self,
        user_id: &str,
        notification_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, TableError> {
        let Some(notification) = self.get(notification_id).await? else {
            return Ok(None);
        };
        if notification.user_id != user_id || !notification.in_app {
            return Ok(None);
        }
        if notification.read_at.is_some() {
            return Ok(Some(notification));
        }
        // Two tabs reading at once may each set a time; either is the time it was read.
        let write = WriteOp::update(
            keys::notification(notification_id),
            Update::new().set("readAt", now.to_rfc3339()),
        )
        .when(Condition::Exists);
        self.table.write(vec![write]).await?;
        Ok(Some(Notification {
            read_at: Some(now),
            ..notification
        }))
    }
}
