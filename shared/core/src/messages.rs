//! Message contracts: every message a producer sends and a consumer reads, typed and versioned in
//! one place. A message on the `jobs` queue is a JSON object whose `type` names its contract
//! (`canary.v1`); a new version is a new type (`*.v2`) that consumers learn before producers send
//! it. Each context registers the types it handles (see [`crate::context`]), so the jobs worker
//! dispatches on `type` without a closed list.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A message of the `jobs` queue: a typed body and the contract name it travels under.
pub trait JobMessage: Serialize + DeserializeOwned {
    /// The `type` field of the wire format, for example `canary.v1`.
    const TYPE: &'static str;

    /// The wire format: `{"type":"<TYPE>", ...fields}`.
    fn to_body(&self) -> String {
        let fields = serde_json::to_string(self).expect("job messages always serialise");
        let ty = serde_json::to_string(Self::TYPE).expect("a type name serialises");
        match fields.strip_prefix('{') {
            Some("}") => format!("{{\"type\":{ty}}}"),
            Some(rest) => format!("{{\"type\":{ty},{rest}"),
            None => unreachable!("job messages serialise as JSON objects"),
        }
    }

    /// Reads a body of this type; `Err` says why it cannot be one (wrong type or fields).
    fn from_body(body: &str) -> Result<Self, String> {
        match message_type(body) {
            Some(ty) if ty == Self::TYPE => {
                serde_json::from_str(body).map_err(|e| format!("unreadable {ty}: {e}"))
            }
            Some(ty) => Err(format!("expected a {} message, got {ty}", Self::TYPE)),
            None => Err("a job message is a JSON object with a type".into()),
        }
    }
}

/// The `type` of a job message, without reading the rest; `None` when the body has none.
pub fn message_type(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        ty: String,
    }
    serde_json::from_str::<Envelope>(body).ok().map(|e| e.ty)
}

/// Sent by the housekeeping schedule; the worker records when it processed it, so health checks
/// can tell that schedules, the queue and the worker all run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Canary {
    pub sent_at: DateTime<Utc>,
}

impl JobMessage for Canary {
    const TYPE: &'static str = "canary.v1";
}

/// Sent when an upload's check is settled (accepted or rejected), for the context that asked for
/// the file: an activity import starts processing its CSV. Sent at least once per upload;
/// consumers read the upload's record for its outcome and are idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadChecked {
    pub upload_id: String,
    pub purpose: String,
}

impl JobMessage for UploadChecked {
    const TYPE: &'static str = "upload-checked.v1";
}

/// What a payment provider said about an order's payment, from the payment webhook to the
/// purchase worker (`purchases` queue). Sent at least once per event, in any order; the worker
/// acts on the order's state, so a repeat or a late event changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOutcome {
    /// The provider's event id (`evt_...`).
    pub event_id: String,
    /// `stripe` or `local`.
    pub provider: String,
    pub payment_id: String,
    pub order_id: String,
    pub outcome: PaymentResult,
    /// What the provider says it charged, in minor units, and in which currency (lower case, as
    /// Stripe writes it).
    pub amount_minor: i64,
    pub currency: String,
    /// When the provider created the event.
    pub at: DateTime<Utc>,
}

/// The outcome of a payment attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentResult {
    Succeeded,
    Failed,
    Canceled,
}

impl JobMessage for PaymentOutcome {
    const TYPE: &'static str = "payment-outcome.v1";
}

/// A message of the `retirements` queue: carry out this retirement (its record says what). Sent
/// by the retirements API and by the purchase worker for orders placed with `retire: true`; sent
/// again by the retirement sweeper while the retirement is not completed. Any number of copies
/// retire the credits once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetireCredits {
    pub retirement_id: String,
}

impl JobMessage for RetireCredits {
    const TYPE: &'static str = "retire-credits.v1";
}

/// What a notification is about; each user may mute kinds (their profile's preferences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    OrderCompleted,
    PaymentFailed,
    OrderExpired,
    RetirementCompleted,
    /// A verifier moved one of the recipient's projects (under review, changes requested,
    /// approved, rejected).
    ProjectStatusChanged,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 5] = [
        NotificationKind::OrderCompleted,
        NotificationKind::PaymentFailed,
        NotificationKind::OrderExpired,
        NotificationKind::RetirementCompleted,
        NotificationKind::ProjectStatusChanged,
    ];
}

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "id")]
pub enum Recipient {
    /// One user.
    User(String),
    /// The owners and admins of an organisation (what it bought or owns, when no one user acted).
    OrgManagers(String),
}

impl Recipient {
    /// The recipient for a record owned by `owner` (`USER#<id>` or `ORG#<id>`) after an action
    /// by `actor` (`user:<id>` or `key:<id>`): the user who acted, else the owner (an
    /// organisation's managers when an API key acted for it).
    pub fn for_owner(owner: &str, actor: Option<&str>) -> Option<Self> {
        if let Some(user) = actor.and_then(|a| a.strip_prefix("user:")) {
            return Some(Recipient::User(user.to_owned()));
        }
        if let Some(user) = owner.strip_prefix("USER#") {
            return Some(Recipient::User(user.to_owned()));
        }
        owner
            .strip_prefix("ORG#")
            .map(|org| Recipient::OrgManagers(org.to_owned()))
    }
}

/// A notification to deliver (`notifications` queue). Producers write the words; the consumer
/// decides the channels from each recipient's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notify {
    /// Names the event, the same in every copy of the message (`order-completed:ord_1`): each
    /// recipient gets one notification per event however often it is sent.
    pub event: String,
    pub kind: NotificationKind,
    pub recipient: Recipient,
    /// The subject of the email and the notification's title: plain text, one line.
    pub title: String,
    /// Plain text.
    pub body: String,
    /// The API path of what it is about (`/v1/orders/ord_1`).
    pub link: Option<String>,
    pub at: DateTime<Utc>,
}

impl JobMessage for Notify {
    const TYPE: &'static str = "notify.v1";
}

impl Notify {
    /// Sends it to the `notifications` queue.
    pub async fn send(&self, queue: &dyn crate::Queue) -> Result<(), crate::QueueError> {
        queue
            .send(
                crate::QueueName::Notifications,
                &self.to_body(),
                std::time::Duration::ZERO,
            )
            .await
            .map(|_| ())
    }

    /// The write that puts it in the outbox (`crate::outbox`), keyed by its event: add it to the
    /// write of the change it announces, then send it with [`Notify::send_staged`].
    pub fn staged(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::table::WriteOp, crate::TableError> {
        crate::outbox::stage(crate::QueueName::Notifications, self, &self.event, now)
    }

    /// Sends the outbox's copy of the notice of `event` (see [`Notify::staged`]), if it is still
    /// there, and removes it.
    pub async fn send_staged(
        table: &dyn crate::Table,
        queue: &dyn crate::Queue,
        event: &str,
    ) -> Result<(), crate::outbox::OutboxError> {
        crate::outbox::send(table, queue, &crate::outbox::id(event)).await
    }
}

/// Messages of the `uploads` queue: object-created events of the uploads bucket, in the local
/// runtime. (In AWS the verifier receives S3's own event, converted to the same type.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UploadEvent {
    #[serde(rename = "object-created.v1", rename_all = "camelCase")]
    ObjectCreated { key: String, size: u64 },
}

impl UploadEvent {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("upload events always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_contract_is_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = Canary { sent_at: at }.to_body();
        assert_eq!(
            body,
            r#"{"type":"canary.v1","sentAt":"2026-11-25T10:00:00Z"}"#
        );
        assert_eq!(Canary::from_body(&body).unwrap(), Canary { sent_at: at });
    }

    #[test]
    fn the_upload_checked_contract_is_pinned() {
        let message = UploadChecked {
            upload_id: "upl_1".into(),
            purpose: "activity_import".into(),
        };
        let body = message.to_body();
        assert_eq!(
            body,
            r#"{"type":"upload-checked.v1","uploadId":"upl_1","purpose":"activity_import"}"#
        );
        assert_eq!(UploadChecked::from_body(&body).unwrap(), message);
    }

    #[test]
    fn the_notify_contract_is_pinned() {
        let at = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let message = Notify {
            event: "order-completed:ord_1".into(),
            kind: NotificationKind::OrderCompleted,
            recipient: Recipient::OrgManagers("org_1".into()),
            title: "Order completed".into(),
            body: "3 t".into(),
            link: Some("/v1/orders/ord_1".into()),
            at,
        };
        let body = message.to_body();
        assert_eq!(
            body,
            r#"{"type":"notify.v1","event":"order-completed:ord_1","kind":"order_completed","recipient":{"kind":"orgManagers","id":"org_1"},"title":"Order completed","body":"3 t","link":"/v1/orders/ord_1","at":"2026-12-03T10:00:00Z"}"#
        );
        assert_eq!(Notify::from_body(&body).unwrap(), message);
    }

    #[test]
    fn the_recipient_is_the_user_who_acted_else_the_owner() {
        assert_eq!(
            Recipient::for_owner("ORG#o", Some("user:u")),
            Some(Recipient::User("u".into()))
        );
        assert_eq!(
            Recipient::for_owner("ORG#o", Some("key:k")),
            Some(Recipient::OrgManagers("o".into()))
        );
        assert_eq!(
            Recipient::for_owner("USER#u", None),
            Some(Recipient::User("u".into()))
        );
        assert_eq!(Recipient::for_owner("SOMETHING", None), None);
    }

    #[test]
    fn a_message_of_another_type_or_version_does_not_parse() {
        assert!(
            Canary::from_body(r#"{"type":"canary.v9","sentAt":"2026-11-25T10:00:00Z"}"#).is_err()
        );
        assert!(Canary::from_body(r#"{"sentAt":"2026-11-25T10:00:00Z"}"#).is_err());
        assert!(Canary::from_body("not json").is_err());
    }

    #[test]
    fn the_type_is_read_without_the_rest() {
        assert_eq!(
            message_type(r#"{"type":"x.v1","anything":[1,2]}"#).as_deref(),
            Some("x.v1")
        );
        assert_eq!(message_type(r#"{"kind":"x"}"#), None);
    }
}
