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
