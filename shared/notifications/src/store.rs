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
    /// To send.
    Pending,
    /// One delivery of the message claimed it and is sending it (see [`Notification::email_claim`]).
    Sending,
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
    /// While `Sending`: which delivery sends the email and until when its claim holds
    /// (`<queue message id> <RFC 3339 time>`), so that copies of the message arriving at once
    /// send it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_claim: Option<String>,
}

/// How long a delivery's claim on an email holds: well above a mail provider's timeout, and at
/// most the queues' visibility timeout (60 s locally, 180 s in AWS), so by the time the claiming
/// message comes back after its delivery died (it may always take its own claim back), or a
/// copy looks again, the claim has lapsed or is finished.
pub const EMAIL_CLAIM: chrono::Duration = chrono::Duration::seconds(60);

/// What a delivery may do about a notification's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailTurn {
    /// Send it: this delivery holds the claim (`claim`), to hand back to [`Notifications::emailed`].
    Send { claim: String },
    /// Nothing to send: sent, refused or off.
    Done,
    /// Another delivery holds a live claim: look again later (if that delivery died, its claim
    /// lapses and this one takes it).
    Elsewhere,
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

/// Whether `delivery` may take over the email claim `claim` at `now`: its own, or lapsed. A
/// claim that does not parse is treated as lapsed.
fn claim_is_free(claim: &str, delivery: &str, now: DateTime<Utc>) -> bool {
    let Some((by, until)) = claim.split_once(' ') else {
        return true;
    };
    by == delivery
        || DateTime::parse_from_rfc3339(until)
            .map_or(true, |until| until.with_timezone(&Utc) <= now)
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
            email_claim: None,
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

    /// Claims the email of `notification` for the queue delivery `delivery` (a message id) at
    /// `now`. A pending email is claimed; a claim is taken over by a redelivery of the message that
    /// made it, or by anyone once it lapsed; another delivery's live claim is
    /// [`EmailTurn::Elsewhere`]. Each claim is a conditional write on the state read, so of copies
    /// arriving at once exactly one sends.
    pub async fn claim_email(
        &self,
        notification: &Notification,
        delivery: &str,
        now: DateTime<Utc>,
    ) -> Result<EmailTurn, TableError> {
        let mut current = notification.clone();
        // A lost race re-reads once: the winner's claim then decides.
        for _ in 0..2 {
            let condition = match (current.email, current.email_claim.as_deref()) {
                (EmailState::Pending, _) => Condition::Equals("email".into(), "pending".into()),
                (EmailState::Sending, Some(claim)) if claim_is_free(claim, delivery, now) => {
                    Condition::Equals("emailClaim".into(), claim.into())
                }
                (EmailState::Sending, _) => return Ok(EmailTurn::Elsewhere),
                _ => return Ok(EmailTurn::Done),
            };
            let claim = format!("{delivery} {}", (now + EMAIL_CLAIM).to_rfc3339());
            let write = WriteOp::update(
                keys::notification(&current.notification_id),
                Update::new()
                    .set("email", "sending")
                    .set("emailClaim", claim.as_str()),
            )
            .when(condition);
            match self.table.write(vec![write]).await {
                Ok(()) => return Ok(EmailTurn::Send { claim }),
                Err(TableError::ConditionFailed { .. }) => {
                    match self.get(&current.notification_id).await? {
                        Some(again) => current = again,
                        None => return Ok(EmailTurn::Done),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(EmailTurn::Elsewhere)
    }

    /// Records what became of the email sent under `claim` (only while that claim holds, so a
    /// late copy never undoes it).
    pub async fn emailed(
        &self,
        notification_id: &str,
        claim: &str,
        state: EmailState,
    ) -> Result<(), TableError> {
        let value = serde_json::to_value(state).map_err(|e| TableError::Backend(e.to_string()))?;
        let write = WriteOp::update(
            keys::notification(notification_id),
            Update::new()
                .set("email", value.as_str().unwrap_or_default())
                .remove("emailClaim"),
        )
        .when(Condition::Equals("emailClaim".into(), claim.into()));
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
