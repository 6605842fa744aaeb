//! Checked uploads: a client uploads a file straight to the uploads bucket with a presigned URL; the
//! object-created event runs [`verify`], which checks size, type (magic bytes) and checksum, then moves
//! the file from `quarantine/` to `accepted/` or `rejected/` and records the outcome. Project documents
//! and activity imports are built on this.
//!
//! Crash safety: the file is copied to its destination first, the record is switched from `pending`
//! with a condition, the `upload-checked.v1` follow-up is queued, and the quarantined copy is
//! deleted last, so a retry after any crash finishes the job and a duplicate event changes nothing
//! but a repeated follow-up (its consumers are idempotent).

use std::time::Duration;

use amanar_core::blobs::{Bucket, PresignedRequest, UploadPolicy};
use amanar_core::messages::{JobMessage, UploadChecked};
use amanar_core::table::{Condition, Index, Item, Query, TableError, Update, WriteOp, items};
use amanar_core::workflow::{Flow, Status, SweepPolicy, Verdict};
use amanar_core::{JobError, Ports, QueueName, keys, new_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Largest file accepted.
pub const MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;
/// How long a presigned upload URL stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
const QUARANTINE: &str = "quarantine/";

/// File types accepted, with the magic bytes that prove them.
const ACCEPTED_TYPES: [(&str, &[u8]); 5] = [
    ("application/pdf", b"%PDF-"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("text/csv", b""),
    // An XLSX workbook is a ZIP archive (ECMA-376 Part 2); `workbook_problem` looks inside.
    (XLSX, b"PK\x03\x04"),
];

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Why a ZIP declared as XLSX is not a plain workbook: ECMA-376 packages name their parts in
/// clear in the archive's directory, so a workbook holds `[Content_Types].xml` and
/// `xl/workbook.xml`, and one with macros (`xl/vbaProject.bin`) or embedded objects
/// (`xl/embeddings/`) is refused.
fn workbook_problem(bytes: &[u8]) -> Option<&'static str> {
    let holds = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    if !holds(b"[Content_Types].xml") || !holds(b"xl/workbook.xml") {
        return Some("an XLSX file must be an Office Open XML workbook");
    }
    if holds(b"xl/vbaProject.bin") || holds(b"xl/embeddings/") {
        return Some("an XLSX workbook may not hold macros or embedded objects");
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Pending,
    Accepted,
    Rejected,
}

impl Status for UploadStatus {
    fn value(self) -> &'static str {
        match self {
            UploadStatus::Pending => "pending",
            UploadStatus::Accepted => "accepted",
            UploadStatus::Rejected => "rejected",
        }
    }

    fn is_final(self) -> bool {
        self != UploadStatus::Pending
    }
}

/// Uploads run on the workflow: pending ones are listed in [`keys::PENDING_UPLOADS`] by when
/// they were declared (a pending upload does not move until its check settles it).
pub const FLOW: Flow = Flow {
    name: "upload",
    open: keys::PENDING_UPLOADS,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    pub id: String,
    pub owner: String,
    /// What the file is for, e.g. `project_document` or `activity_import`.
    pub purpose: String,
    /// The resource the file belongs to (an activity import id, a project id), for the consumer of
    /// its `upload-checked.v1` follow-up.
    #[serde(default)]
    pub reference: Option<String>,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 the client declared, checked when given.
    pub sha256: Option<String>,
    pub status: UploadStatus,
    /// Why the file was rejected.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub checked_at: Option<DateTime<Utc>>,
}

impl Upload {
    /// Where the file is while it waits to be checked.
    pub fn quarantine_key(&self) -> String {
        format!("{QUARANTINE}{}", self.id)
    }

    /// Where the file is once checked.
    pub fn object_key(&self) -> String {
        match self.status {
            UploadStatus::Pending => self.quarantine_key(),
            UploadStatus::Accepted => format!("accepted/{}", self.id),
            UploadStatus::Rejected => format!("rejected/{}", self.id),
        }
    }
}

/// How to upload a file: one request, exactly as given, before it expires.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadView {
    pub method: String,
    pub url: String,
    /// Headers to send as given (they are signed).
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

impl From<PresignedRequest> for UploadView {
    fn from(request: PresignedRequest) -> Self {
        UploadView {
            method: request.method,
            url: request.url,
            headers: request.headers.into_iter().collect(),
            expires_at: request.expires_at,
        }
    }
}

/// What a client declares before uploading.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub owner: String,
    pub purpose: String,
    pub reference: Option<String>,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Blob(#[from] amanar_core::BlobError),
}

impl From<UploadError> for amanar_http::ApiError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Invalid { field, message } => {
                amanar_http::ApiError::validation(field, message)
            }
            UploadError::Table(e) => e.into(),
            UploadError::Blob(e) => e.into(),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> UploadError {
    UploadError::Invalid {
        field,
        message: message.into(),
    }
}

fn record_item(upload: &Upload) -> Result<amanar_core::Item, TableError> {
    let mut item = items::with_key(&keys::upload(&upload.id), upload)?;
    keys::upload_of_owner(&upload.owner, &upload.id).insert_into(&mut item);
    FLOW.start(&mut item, &upload.id, upload.status, upload.created_at);
    Ok(item)
}

/// Records a pending upload and returns the URL the client uploads the file to.
pub async fn create(
    ports: &Ports,
    new: NewUpload,
) -> Result<(Upload, PresignedRequest), UploadError> {
    let (upload, record) = prepare(ports, new)?;
    ports.table.write(vec![record]).await?;
    let url = presign(ports, &upload).await?;
    Ok((upload, url))
}

/// Validates a declared upload and returns it with the write that records it, for a caller that
/// records it in one transaction with its own items (then [`presign`]s the URL).
pub fn prepare(ports: &Ports, new: NewUpload) -> Result<(Upload, WriteOp), UploadError> {
    if !ACCEPTED_TYPES.iter().any(|(t, _)| *t == new.content_type) {
        let accepted: Vec<&str> = ACCEPTED_TYPES.iter().map(|(t, _)| *t).collect();
        return Err(invalid(
            "contentType",
            format!("must be one of {}", accepted.join(", ")),
        ));
    }
    if new.size == 0 || new.size > MAX_UPLOAD_BYTES {
        return Err(invalid(
            "size",
            format!("must be between 1 and {MAX_UPLOAD_BYTES} bytes"),
        ));
    }
    if new.filename.trim().is_empty()
        || new.filename.chars().count() > 255
        || new.filename.chars().any(char::is_control)
    {
        return Err(invalid("filename", "must be 1 to 255 printable characters"));
    }
    if let Some(sum) = &new.sha256
        && (sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(invalid("sha256", "must be 64 hexadecimal characters"));
    }
    let upload = Upload {
        id: new_id("upl"),
        owner: new.owner,
        purpose: new.purpose,
        reference: new.reference,
        filename: new.filename,
        content_type: new.content_type,
        size: new.size,
        sha256: new.sha256.map(|s| s.to_ascii_lowercase()),
        status: UploadStatus::Pending,
        reason: None,
        created_at: ports.clock.now(),
        checked_at: None,
    };
    let record = WriteOp::put(record_item(&upload)?).when(Condition::NotExists);
    Ok((upload, record))
}

/// The URL a client uploads a recorded upload's file to: one PUT of exactly the declared type and
/// length, valid for [`UPLOAD_URL_TTL`].
pub async fn presign(ports: &Ports, upload: &Upload) -> Result<PresignedRequest, UploadError> {
    let policy = UploadPolicy {
        content_type: upload.content_type.clone(),
        content_length: upload.size,
        expires_in: UPLOAD_URL_TTL,
    };
    Ok(ports
        .blobs
        .presign_upload(Bucket::Uploads, &upload.quarantine_key(), &policy)
        .await?)
}

/// Tells the upload's consumer (through the `jobs` queue) that its check is settled. Sent after
/// every settlement, and again on a duplicate event or a consumer's sweeper nudge: consumers are
/// idempotent.
pub async fn announce(ports: &Ports, upload: &Upload) -> Result<(), amanar_core::QueueError> {
    let message = UploadChecked {
        upload_id: upload.id.clone(),
        purpose: upload.purpose.clone(),
    };
    ports
        .queue
        .send(QueueName::Jobs, &message.to_body(), Duration::ZERO)
        .await
        .map(|_| ())
}

pub async fn get(ports: &Ports, upload_id: &str) -> Result<Option<Upload>, TableError> {
    items::load(&*ports.table, &keys::upload(upload_id)).await
}

/// Uploads of one owner, oldest first.
pub async fn list_of_owner(
    ports: &Ports,
    owner: &str,
    limit: usize,
) -> Result<Vec<Upload>, TableError> {
    let page = ports
        .table
        .query(&Query::partition(Index::Gsi1, keys::uploads_of_owner(owner)).limit(limit))
        .await?;
    page.items.into_iter().map(items::parse).collect()
}

/// Why a file fails its checks, if it does.
fn problem_with(upload: &Upload, bytes: &[u8]) -> Option<String> {
    if bytes.len() as u64 != upload.size {
        return Some(format!(
            "declared {} bytes, received {}",
            upload.size,
            bytes.len()
        ));
    }
    let magic = ACCEPTED_TYPES
        .iter()
        .find(|(t, _)| *t == upload.content_type)
        .map(|(_, m)| *m)
        .unwrap_or(b"\0");
    if !bytes.starts_with(magic) {
        return Some(format!("content is not {}", upload.content_type));
    }
    if upload.content_type == XLSX
        && let Some(problem) = workbook_problem(bytes)
    {
        return Some(problem.into());
    }
    if upload.content_type == "text/csv"
        && (std::str::from_utf8(bytes).is_err() || bytes.contains(&0))
    {
        return Some("a CSV file must be UTF-8 text".into());
    }
    if let Some(expected) = &upload.sha256 {
        let actual = hex::encode(Sha256::digest(bytes));
        if &actual != expected {
            return Some("SHA-256 checksum does not match".into());
        }
    }
    None
}

/// Switches a pending upload to its outcome (once: a settled upload stays as it is) and takes it
/// out of the pending index.
async fn settle(ports: &Ports, checked: &Upload) -> Result<(), TableError> {
    let outcome = Update::new()
        .set(
            "reason",
            checked
                .reason
                .clone()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
        )
        .set(
            "checkedAt",
            serde_json::to_value(checked.checked_at).expect("times serialise"),
        );
    let op = FLOW.transition(
        keys::upload(&checked.id),
        &checked.id,
        UploadStatus::Pending,
        checked.status,
        outcome,
        ports.clock.now(),
    );
    Flow::apply(&*ports.table, op).await.map(|_| ())
}

/// How long an upload may stay pending before the sweeper looks at it.
pub const SWEEP_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Finishes uploads whose object-created event was lost (a crash between storing the file and
/// queueing the event, or a dropped S3 notification): a file in quarantine is checked now; a
/// declaration whose URL expired with no file is rejected. Run by housekeeping. Returns how many
/// uploads it settled.
pub async fn sweep_stale(ports: &Ports) -> Result<usize, TableError> {
    let now = ports.clock.now();
    let report = FLOW
        .sweep(&*ports.table, now, SWEEP_POLICY, |item| {
            sweep_one(ports, item, now)
        })
        .await?;
    Ok(report.moved())
}

/// Stale after [`SWEEP_AFTER`]; at most 1000 per sweep; 50 s of work (housekeeping runs every 5
/// minutes, with a 120 s timeout in AWS).
const SWEEP_POLICY: SweepPolicy = SweepPolicy {
    stale_after: SWEEP_AFTER,
    limit: 1000,
    budget: Duration::from_secs(50),
};

/// Checks one stale upload whose file is in quarantine, or rejects it once its URL has expired
/// with no file; leaves it waiting otherwise.
async fn sweep_one(ports: &Ports, item: Item, now: DateTime<Utc>) -> Result<Verdict, TableError> {
    let upload: Upload = items::parse(item)?;
    let key = upload.quarantine_key();
    let present = ports
        .blobs
        .get(Bucket::Uploads, &key)
        .await
        .map_err(|e| {
            TableError::Unavailable(format!("could not look for upload {}: {e}", upload.id))
        })?
        .is_some();
    if present {
        return match verify(ports, &key).await {
            Ok(()) => Ok(Verdict::Nudged),
            Err(error) => Err(TableError::Unavailable(format!(
                "could not check upload {}: {error}",
                upload.id
            ))),
        };
    }
    let expired = now - upload.created_at
        > chrono::TimeDelta::from_std(UPLOAD_URL_TTL).expect("a short TTL") + SWEEP_AFTER;
    if !expired {
        return Ok(Verdict::Waiting);
    }
    let rejected = Upload {
        status: UploadStatus::Rejected,
        reason: Some("no file arrived before the upload URL expired".into()),
        checked_at: Some(now),
        ..upload
    };
    settle(ports, &rejected).await?;
    if let Err(error) = announce(ports, &rejected).await {
        tracing::warn!(upload_id = %rejected.id, %error, "could not announce an expired upload");
    }
    Ok(Verdict::GaveUp)
}

/// The housekeeping task of [`sweep_stale`].
pub const SWEEP: amanar_core::context::Task<Ports> = amanar_core::context::Task {
    name: "stale uploads",
    run: |ports| Box::pin(async move { sweep_stale(ports).await.map_err(|e| e.to_string()) }),
};

/// Checks an uploaded object (the object-created event's key) and files it. Idempotent.
pub async fn verify(ports: &Ports, object_key: &str) -> Result<(), JobError> {
    let Some(upload_id) = object_key.strip_prefix(QUARANTINE) else {
        return Err(JobError::Poison(format!(
            "not a quarantined upload: {object_key}"
        )));
    };
    let retry = |e: &dyn std::fmt::Display| JobError::Retry(e.to_string());
    let Some(upload) = get(ports, upload_id).await.map_err(|e| retry(&e))? else {
        // Nobody asked for this file: it never counts, and it does not stay.
        tracing::warn!(object_key, "deleting an upload that has no record");
        return ports
            .blobs
            .delete(Bucket::Uploads, object_key)
            .await
            .map_err(|e| retry(&e));
    };
    if upload.status != UploadStatus::Pending {
        // Already filed (a duplicate event, or a retry after the record was switched): the
        // follow-up may not have gone out before a crash, so it goes again.
        announce(ports, &upload).await.map_err(|e| retry(&e))?;
        return ports
            .blobs
            .delete(Bucket::Uploads, object_key)
            .await
            .map_err(|e| retry(&e));
    }
    let Some(blob) = ports
        .blobs
        .get(Bucket::Uploads, object_key)
        .await
        .map_err(|e| retry(&e))?
    else {
        return Err(JobError::Poison(format!(
            "object {object_key} is gone while its upload is pending"
        )));
    };
    let reason = problem_with(&upload, &blob.bytes);
    let checked = Upload {
        status: if reason.is_some() {
            UploadStatus::Rejected
        } else {
            UploadStatus::Accepted
        },
        reason,
        checked_at: Some(ports.clock.now()),
        ..upload
    };
    ports
        .blobs
        .put(
            Bucket::Uploads,
            &checked.object_key(),
            blob.bytes,
            &checked.content_type,
        )
        .await
        .map_err(|e| retry(&e))?;
    settle(ports, &checked).await.map_err(|e| retry(&e))?;
    tracing::info!(upload_id = %checked.id, status = ?checked.status, "upload checked");
    announce(ports, &checked).await.map_err(|e| retry(&e))?;
    ports
        .blobs
        .delete(Bucket::Uploads, object_key)
        .await
        .map_err(|e| retry(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory names of a ZIP archive, as a workbook's archive writes them in clear.
    fn archive(names: &[&str]) -> Vec<u8> {
        let mut bytes = b"PK\x03\x04".to_vec();
        for name in names {
            bytes.extend(b"\0\0PK\x01\x02");
            bytes.extend(name.as_bytes());
        }
        bytes
    }

    #[test]
    fn an_xlsx_must_be_a_workbook_without_macros_or_embedded_objects() {
        let workbook = archive(&["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"]);
        assert_eq!(workbook_problem(&workbook), None);
        assert!(
            workbook_problem(&archive(&["word/document.xml", "[Content_Types].xml"])).is_some(),
            "a DOCX is not a workbook"
        );
        assert!(
            workbook_problem(&archive(&["META-INF/MANIFEST.MF"])).is_some(),
            "a JAR is not a workbook"
        );
        let macros = archive(&[
            "[Content_Types].xml",
            "xl/workbook.xml",
            "xl/vbaProject.bin",
        ]);
        assert!(workbook_problem(&macros).is_some());
        let embedded = archive(&[
            "[Content_Types].xml",
            "xl/workbook.xml",
            "xl/embeddings/oleObject1.bin",
        ]);
        assert!(workbook_problem(&embedded).is_some());
    }
}
