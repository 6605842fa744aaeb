//! Message contracts: every message a producer sends and a consumer reads, typed and versioned in
//! one place. A new version is a new variant (`*.v2`) that consumers learn before producers send it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Messages of the `jobs` queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum JobMessage {
    /// Sent by the housekeeping schedule; the worker records when it processed it, so health checks
    /// can tell that schedules, the queue and the worker all run.
    #[serde(rename = "canary.v1", rename_all = "camelCase")]
    Canary { sent_at: DateTime<Utc> },
    /// Sent when an upload's check is settled (accepted or rejected), for the context that asked
    /// for the file: an activity import starts processing its CSV. Sent at least once per upload;
    /// consumers read the upload's record for its outcome and are idempotent.
    #[serde(rename = "upload-checked.v1", rename_all = "camelCase")]
    UploadChecked { upload_id: String, purpose: String },
}

/// Messages of the `uploads` queue: object-created events of the uploads bucket, in the local
/// runtime. (In AWS the verifier receives S3's own event, converted to the same type.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UploadEvent {
    #[serde(rename = "object-created.v1", rename_all = "camelCase")]
    ObjectCreated { key: String, size: u64 },
}

impl JobMessage {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job messages always serialise")
    }
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
        let body = JobMessage::Canary { sent_at: at }.to_body();
        assert_eq!(
            body,
            r#"{"type":"canary.v1","sentAt":"2026-11-25T10:00:00Z"}"#
        );
        assert_eq!(
            serde_json::from_str::<JobMessage>(&body).unwrap(),
            JobMessage::Canary { sent_at: at }
        );
    }

    #[test]
    fn the_upload_checked_contract_is_pinned() {
        let message = JobMessage::UploadChecked {
            upload_id: "upl_1".into(),
            purpose: "activity_import".into(),
        };
        let body = message.to_body();
        assert_eq!(
            body,
            r#"{"type":"upload-checked.v1","uploadId":"upl_1","purpose":"activity_import"}"#
        );
        assert_eq!(serde_json::from_str::<JobMessage>(&body).unwrap(), message);
    }

    #[test]
    fn an_unknown_message_type_does_not_parse() {
        assert!(serde_json::from_str::<JobMessage>(r#"{"type":"canary.v9"}"#).is_err());
    }
}
