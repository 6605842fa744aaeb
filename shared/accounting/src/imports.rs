//! Activity imports: an organisation uploads a CSV of activities (see [`crate::activity_csv`]) with
//! a presigned URL; the upload is checked like every upload (size, type, checksum); then a job on
//! the `jobs` queue calculates the whole file and saves it as the organisation's footprint for the
//! import's period, or lists the bad rows and saves nothing.
//!
//! States: `awaiting_upload` → `processing` (with progress) → `completed` (with the footprint id),
//! or `failed` (bad rows, or the period is taken), or `rejected` (the file failed its upload check
//! or never arrived). The job is idempotent: the footprint's id is derived from the import's, the
//! footprint and the import's `completed` status commit in one transaction, and every status change
//! is conditional on the status it leaves, so a redelivered or concurrent message changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use amanar_core::table::{Condition, Index, Query, TableError, Update, WriteOp, items};
use amanar_core::workflow::{Flow, Status, SweepPolicy, Verdict};
use amanar_core::{Bucket, Cursor, JobError, Ports, PresignedRequest, keys, new_id};
use amanar_platform::uploads::{self, NewUpload, UploadError, UploadStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::activity_csv::{self, RowError};
use crate::factors::Library;
use crate::footprints::{self, Calculator, Footprint, SaveError};
use crate::gwp::GwpSet;
use crate::period::Period;

/// The upload purpose of activity files.
pub const PURPOSE: &str = "activity_import";
/// How often a running import records its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    AwaitingUpload,
    Processing,
    Completed,
    Failed,
    Rejected,
}

impl Status for ImportStatus {
    fn value(self) -> &'static str {
        match self {
            ImportStatus::AwaitingUpload => "awaiting_upload",
            ImportStatus::Processing => "processing",
            ImportStatus::Completed => "completed",
            ImportStatus::Failed => "failed",
            ImportStatus::Rejected => "rejected",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            ImportStatus::Completed | ImportStatus::Failed | ImportStatus::Rejected
        )
    }
}

/// Activity imports run on the workflow: unfinished ones are listed in [`keys::OPEN_IMPORTS`].
pub const FLOW: Flow = Flow {
    name: "activity import",
    open: keys::OPEN_IMPORTS,
};

/// How far a running import is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub rows_processed: u64,
    pub bytes_processed: u64,
    pub bytes_total: u64,
}

/// An activity import and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityImport {
    pub id: String,
    pub org_id: String,
    pub upload_id: String,
    pub filename: String,
    /// Declared size of the file, in bytes.
    pub size: u64,
    /// The footprint period the file's activities belong to.
    pub period: Period,
    pub name: Option<String>,
    pub gwp_set: Option<GwpSet>,
    /// A current footprint of the organisation that the import's footprint corrects.
    pub replaces: Option<String>,
    pub status: ImportStatus,
    pub progress: Progress,
    /// Every problem found (rows and file).
    pub error_count: u64,
    /// The first 100 problems, with their row (1 is the header) and column.
    pub errors: Vec<RowError>,
    /// Why the import was rejected or failed as a whole.
    pub reason: Option<String>,
    /// The footprint the import made, once completed.
    pub footprint_id: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What a client declares to start an import.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub org_id: String,
    pub created_by: String,
    pub filename: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub period: Period,
    pub name: Option<String>,
    pub gwp_set: Option<GwpSet>,
    pub replaces: Option<String>,
}

/// The footprint an import makes: its id follows from the import's, so a retried job can only
/// ever make the same one.
pub fn footprint_id(import_id: &str) -> String {
    format!("fp_{}", import_id.strip_prefix("imp_").unwrap_or(import_id))
}

fn import_item(import: &ActivityImport) -> Result<amanar_core::Item, TableError> {
    let mut item = items::with_key(&keys::activity_import(&import.id), import)?;
    keys::import_of_org(&import.org_id, &import.id).insert_into(&mut item);
    FLOW.start(&mut item, &import.id, import.status, import.updated_at);
    Ok(item)
}

/// Records an import waiting for its file and returns the URL to upload the file to. Its errors
/// are the upload's: a declaration it refuses, or the table and blob stores.
pub async fn create(
    ports: &Ports,
    new: NewImport,
) -> Result<(ActivityImport, PresignedRequest), UploadError> {
    if let Some(name) = &new.name
        && (name.trim().is_empty() || name.chars().count() > 100)
    {
        return Err(UploadError::Invalid {
            field: "name",
            message: "must be 1 to 100 characters".into(),
        });
    }
    let id = new_id("imp");
    let (upload, upload_record) = uploads::prepare(
        ports,
        NewUpload {
            owner: format!("org:{}", new.org_id),
            purpose: PURPOSE.into(),
            reference: Some(id.clone()),
            filename: new.filename.clone(),
            content_type: "text/csv".into(),
            size: new.size,
            sha256: new.sha256,
        },
    )?;
    let now = ports.clock.now();
    let import = ActivityImport {
        id,
        org_id: new.org_id,
        upload_id: upload.id.clone(),
        filename: upload.filename.clone(),
        size: upload.size,
        period: new.period,
        name: new.name,
        gwp_set: new.gwp_set,
        replaces: new.replaces,
        status: ImportStatus::AwaitingUpload,
        progress: Progress {
            bytes_total: upload.size,
            ..Progress::default()
        },
        error_count: 0,
        errors: Vec::new(),
        reason: None,
        footprint_id: None,
        created_by: new.created_by,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    ports
        .table
        .write(vec![
            upload_record,
            WriteOp::put(import_item(&import)?).when(Condition::NotExists),
        ])
        .await?;
    let url = uploads::presign(ports, &upload).await?;
    Ok((import, url))
}

pub async fn get(ports: &Ports, import_id: &str) -> Result<Option<ActivityImport>, TableError> {
    items::load(&*ports.table, &keys::activity_import(import_id)).await
}

/// An organisation's imports, newest first.
pub async fn list(
    ports: &Ports,
    org_id: &str,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<ActivityImport>, Option<Cursor>), TableError> {
    let page = ports
        .table
        .query(
            &Query::partition(Index::Gsi1, keys::imports_of_org(org_id))
                .backward()
                .limit(limit)
                .after(cursor),
        )
        .await?;
    items::parse_page(page)
}

/// The write that moves an import from `from` to `to` with `changes`, keeping it in the index of
/// unfinished imports until it is final.
fn move_op(
    import_id: &str,
    from: ImportStatus,
    to: ImportStatus,
    changes: Update,
    now: DateTime<Utc>,
) -> WriteOp {
    let changes = if to.is_final() {
        changes.set("finishedAt", json!(now))
    } else {
        changes
    };
    FLOW.transition(
        keys::activity_import(import_id),
        import_id,
        from,
        to,
        changes,
        now,
    )
}

/// Moves an import from `from` to `to` with `changes`; false when it was not in `from` (another
/// delivery moved it first).
async fn transition(
    ports: &Ports,
    import_id: &str,
    from: ImportStatus,
    to: ImportStatus,
    changes: Update,
) -> Result<bool, TableError> {
    let op = move_op(import_id, from, to, changes, ports.clock.now());
    Flow::apply(&*ports.table, op).await
}

fn retry(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(error.to_string())
}

/// The follow-up of a checked activity file: [`on_upload_checked`].
pub const UPLOAD: amanar_core::context::UploadFollowUp<Ports> =
    amanar_core::context::UploadFollowUp {
        purpose: PURPOSE,
        on_checked: |ports, upload_id| Box::pin(on_upload_checked(ports, upload_id)),
    };

/// The housekeeping task of [`sweep_stale`].
pub const SWEEP: amanar_core::context::Task<Ports> = amanar_core::context::Task {
    name: "stuck activity imports",
    run: |ports| Box::pin(async move { sweep_stale(ports).await.map_err(|e| e.to_string()) }),
};

/// The consumer of `upload-checked.v1` for activity files: settles a rejected upload's import, or
/// calculates an accepted file and saves its footprint. Idempotent.
pub async fn on_upload_checked(ports: &Ports, upload_id: &str) -> Result<(), JobError> {
    let Some(upload) = uploads::get(ports, upload_id).await.map_err(retry)? else {
        return Err(JobError::Poison(format!("no upload {upload_id}")));
    };
    let Some(import_id) = upload.reference.clone() else {
        return Err(JobError::Poison(format!(
            "upload {upload_id} names no import"
        )));
    };
    let Some(import) = get(ports, &import_id).await.map_err(retry)? else {
        return Err(JobError::Poison(format!(
            "upload {upload_id} names import {import_id}, which does not exist"
        )));
    };
    if import.status.is_final() {
        return Ok(());
    }
    match upload.status {
        UploadStatus::Pending => Err(JobError::Retry("the upload is not checked yet".into())),
        UploadStatus::Rejected => {
            let reason = upload
                .reason
                .unwrap_or_else(|| "the file failed its upload check".into());
            transition(
                ports,
                &import.id,
                ImportStatus::AwaitingUpload,
                ImportStatus::Rejected,
                Update::new().set("reason", reason),
            )
            .await
            .map_err(retry)?;
            Ok(())
        }
        UploadStatus::Accepted => {
            if import.status == ImportStatus::AwaitingUpload {
                let started = transition(
                    ports,
                    &import.id,
                    ImportStatus::AwaitingUpload,
                    ImportStatus::Processing,
                    Update::new().set("startedAt", json!(ports.clock.now())),
                )
                .await
                .map_err(retry)?;
                if !started {
                    // Another delivery moved it: carry on only if it is still running.
                    let current = get(ports, &import.id).await.map_err(retry)?;
                    if current.is_none_or(|i| i.status != ImportStatus::Processing) {
                        return Ok(());
                    }
                }
            }
            process(ports, import, &upload.object_key()).await
        }
    }
}

/// Calculates the accepted file and saves the footprint, or the reasons there is none.
async fn process(ports: &Ports, import: ActivityImport, object_key: &str) -> Result<(), JobError> {
    let Some(blob) = ports
        .blobs
        .get(Bucket::Uploads, object_key)
        .await
        .map_err(retry)?
    else {
        return Err(JobError::Retry(format!(
            "accepted file {object_key} is not readable yet"
        )));
    };
    let bytes_total = blob.bytes.len() as u64;
    let rows = Arc::new(AtomicU64::new(0));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let gwp_set = import.gwp_set;
    let calculation = {
        let (rows, bytes_read) = (rows.clone(), bytes_read.clone());
        tokio::task::spawn_blocking(move || {
            activity_csv::calculate(Library::shipped(), gwp_set, &blob.bytes, |r, b| {
                rows.store(r, Ordering::Relaxed);
                bytes_read.store(b, Ordering::Relaxed);
            })
        })
    };
    tokio::pin!(calculation);
    let outcome = loop {
        tokio::select! {
            done = &mut calculation => break done.map_err(|e| retry(format!("the calculation stopped: {e}")))?,
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                let progress = Progress {
                    rows_processed: rows.load(Ordering::Relaxed),
                    bytes_processed: bytes_read.load(Ordering::Relaxed),
                    bytes_total,
                };
                // Progress is a courtesy: a failed write only leaves the figure older.
                if let Err(error) = transition(
                    ports,
                    &import.id,
                    ImportStatus::Processing,
                    ImportStatus::Processing,
                    Update::new().set("progress", json!(progress)),
                )
                .await
                {
                    tracing::warn!(import_id = %import.id, %error, "could not record import progress");
                }
            }
        }
    };
    let now = ports.clock.now();
    let computed = match outcome {
        Ok(computed) => computed,
        Err(rejected) => {
            tracing::info!(import_id = %import.id, errors = rejected.error_count, "activity file has bad rows");
            let progress = Progress {
                rows_processed: rejected.rows,
                bytes_processed: bytes_total,
                bytes_total,
            };
            transition(
                ports,
                &import.id,
                ImportStatus::Processing,
                ImportStatus::Failed,
                Update::new()
                    .set("progress", json!(progress))
                    .set("errorCount", rejected.error_count)
                    .set("errors", json!(rejected.errors))
                    .set(
                        "reason",
                        format!(
                            "{} problem(s) in the file; nothing was imported",
                            rejected.error_count
                        ),
                    ),
            )
            .await
            .map_err(retry)?;
            return Ok(());
        }
    };
    let footprint = Footprint {
        id: footprint_id(&import.id),
        org_id: Some(import.org_id.clone()),
        user_id: None,
        name: import.name.clone(),
        period: import.period,
        calculator: Calculator::Import,
        import_id: Some(import.id.clone()),
        gwp_set: import.gwp_set,
        library_version: format!("{:x}", Library::shipped().version()),
        totals: computed.totals,
        line_count: computed.line_count,
        replaces: import.replaces.clone(),
        superseded_by: None,
        created_by: import.created_by.clone(),
        created_at: now,
    };
    let progress = Progress {
        rows_processed: computed.line_count,
        bytes_processed: bytes_total,
        bytes_total,
    };
    let complete = move_op(
        &import.id,
        ImportStatus::Processing,
        ImportStatus::Completed,
        Update::new()
            .set("progress", json!(progress))
            .set("footprintId", footprint.id.clone()),
        now,
    );
    match footprints::save(ports, &footprint, computed.lines_csv.into(), vec![complete]).await {
        Ok(()) => {
            tracing::info!(import_id = %import.id, footprint_id = %footprint.id, lines = footprint.line_count, "activity import completed");
            Ok(())
        }
        // Another delivery finished first.
        Err(SaveError::AlreadyExists | SaveError::ConditionFailed(_)) => Ok(()),
        Err(
            refused @ (SaveError::Overlap { .. } | SaveError::NotCurrent(_) | SaveError::TooMany),
        ) => {
            transition(
                ports,
                &import.id,
                ImportStatus::Processing,
                ImportStatus::Failed,
                Update::new()
                    .set("progress", json!(progress))
                    .set("reason", refused.to_string()),
            )
            .await
            .map_err(retry)?;
            Ok(())
        }
        Err(other) => Err(retry(other)),
    }
}

/// How long an unfinished import may stand still before the sweeper nudges it.
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Nudges after which a stuck import is failed rather than retried again (two to three hours of
/// nudges, so a long queue backlog alone does not fail a healthy import).
pub const MAX_SWEEPS: i64 = 12;
/// Age after which an import whose file never passed its check is failed.
pub const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(3);
/// Stale after 10 minutes; at most 1000 per sweep; 50 s of work (housekeeping runs every 5
/// minutes, with a 120 s timeout in AWS).
const SWEEP_POLICY: SweepPolicy = SweepPolicy {
    stale_after: STALE_AFTER,
    limit: 1000,
    budget: Duration::from_secs(50),
};

/// Finishes imports that stopped moving: their `upload-checked.v1` message went to the dead-letter
/// queue, or a worker died mid-file. An import whose upload is settled gets its message again;
/// after [`MAX_SWEEPS`] nudges, or [`ABANDONED_AFTER`] with no checked file, it is failed with a
/// reason, so no import waits forever. Run by housekeeping; returns how many imports it nudged or
/// failed. One import's error is logged and left to the next run.
pub async fn sweep_stale(ports: &Ports) -> Result<usize, TableError> {
    let now = ports.clock.now();
    let report = FLOW
        .sweep(&*ports.table, now, SWEEP_POLICY, |item| {
            sweep_one(ports, item, now)
        })
        .await?;
    Ok(report.moved())
}

/// Nudges or fails one stale import, or leaves it waiting for its upload.
async fn sweep_one(
    ports: &Ports,
    item: amanar_core::Item,
    now: DateTime<Utc>,
) -> Result<Verdict, TableError> {
    let sweeps = Flow::sweeps(&item);
    let seen = item.clone();
    let import: ActivityImport = items::parse(item)?;
    let Some(upload) = uploads::get(ports, &import.upload_id).await? else {
        tracing::warn!(import_id = %import.id, "an import's upload record is missing");
        return Ok(Verdict::Waiting);
    };
    let abandoned = now - import.created_at > ABANDONED_AFTER;
    let give_up = match upload.status {
        // The upload sweeper settles it, and that sends the message; unless it never does.
        UploadStatus::Pending if !abandoned => return Ok(Verdict::Waiting),
        UploadStatus::Pending => Some("no checked file arrived within 3 hours; start a new import"),
        _ if sweeps >= MAX_SWEEPS => {
            Some("the file could not be processed after repeated attempts; start a new import")
        }
        _ => None,
    };
    if let Some(reason) = give_up {
        let give_up = move_op(
            &import.id,
            import.status,
            ImportStatus::Failed,
            Update::new().set("reason", reason),
            ports.clock.now(),
        );
        let failed = Flow::apply(&*ports.table, Flow::as_seen(give_up, &seen)).await?;
        if !failed {
            // It moved meanwhile: nothing to give up on.
            return Ok(Verdict::Waiting);
        }
        tracing::error!(import_id = %import.id, reason, "gave up on a stuck import");
        return Ok(Verdict::GaveUp);
    }
    uploads::announce(ports, &upload)
        .await
        .map_err(|e| TableError::Unavailable(format!("could not queue a nudge: {e}")))?;
    let nudge = FLOW.nudge(
        keys::activity_import(&import.id),
        &import.id,
        import.status,
        ports.clock.now(),
    );
    if !Flow::apply(&*ports.table, Flow::as_seen(nudge, &seen)).await? {
        return Ok(Verdict::Waiting);
    }
    tracing::warn!(import_id = %import.id, status = ?import.status, "nudged a stuck import");
    Ok(Verdict::Nudged)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use amanar_core::messages::{JobMessage, UploadChecked};
    use amanar_core::{ManualClock, QueueName, Received};
    use amanar_embedded::{EmbeddedStore, LocalBlobs};

    use super::*;

    fn ports(clock: Arc<ManualClock>) -> (Ports, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let ports = Ports {
            table: Arc::new(store.table.clone()),
            queue: Arc::new(store.queue.clone()),
            blobs: Arc::new(LocalBlobs::new(
                dir.path().join("blobs"),
                "http://127.0.0.1:9",
                vec![7; 32],
            )),
            clock,
        };
        (ports, dir)
    }

    const FILE: &[u8] = b"activityId,region,amount,unit\nfuel-natural_gas,GB,1000,kWh\n";

    /// Declares an import and puts its file in quarantine, as a client's upload would.
    async fn uploaded(ports: &Ports) -> ActivityImport {
        let (import, _) = create(
            ports,
            NewImport {
                org_id: "org_1".into(),
                created_by: "usr_1".into(),
                filename: "a.csv".into(),
                size: FILE.len() as u64,
                sha256: None,
                period: Period::new("2024-01-01".parse().unwrap(), "2024-12-31".parse().unwrap())
                    .unwrap(),
                name: None,
                gwp_set: None,
                replaces: None,
            },
        )
        .await
        .unwrap();
        ports
            .blobs
            .put(
                Bucket::Uploads,
                &format!("quarantine/{}", import.upload_id),
                bytes::Bytes::from_static(FILE),
                "text/csv",
            )
            .await
            .unwrap();
        import
    }

    /// Takes every message off the jobs queue (as if they were lost to the dead-letter queue).
    async fn drain(ports: &Ports) -> Vec<Received> {
        let messages = ports
            .queue
            .receive(QueueName::Jobs, 10, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        for m in &messages {
            ports
                .queue
                .delete(QueueName::Jobs, &m.receipt)
                .await
                .unwrap();
        }
        messages
    }

    #[tokio::test]
    async fn an_import_whose_message_was_lost_is_nudged_and_completes() {
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let (ports, _dir) = ports(clock.clone());
        let import = uploaded(&ports).await;
        uploads::verify(&ports, &format!("quarantine/{}", import.upload_id))
            .await
            .unwrap();
        assert_eq!(drain(&ports).await.len(), 1, "the check announced the file");

        assert_eq!(sweep_stale(&ports).await.unwrap(), 0, "not stale yet");
        clock.advance(STALE_AFTER + chrono::TimeDelta::seconds(1));
        assert_eq!(sweep_stale(&ports).await.unwrap(), 1);
        assert_eq!(
            sweep_stale(&ports).await.unwrap(),
            0,
            "nudged once per period"
        );
        let nudges = drain(&ports).await;
        assert_eq!(nudges.len(), 1);
        let Ok(UploadChecked { upload_id, .. }) = UploadChecked::from_body(&nudges[0].body) else {
            panic!("an upload-checked message: {}", nudges[0].body);
        };
        on_upload_checked(&ports, &upload_id).await.unwrap();
        let done = get(&ports, &import.id).await.unwrap().unwrap();
        assert_eq!(done.status, ImportStatus::Completed);
        clock.advance(STALE_AFTER * 2);
        assert_eq!(
            sweep_stale(&ports).await.unwrap(),
            0,
            "finished imports leave the index"
        );
    }

    #[tokio::test]
    async fn an_import_that_never_moves_is_failed_after_the_last_nudge() {
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let (ports, _dir) = ports(clock.clone());
        let import = uploaded(&ports).await;
        uploads::verify(&ports, &format!("quarantine/{}", import.upload_id))
            .await
            .unwrap();
        for _ in 0..MAX_SWEEPS {
            clock.advance(STALE_AFTER + chrono::TimeDelta::seconds(1));
            assert_eq!(sweep_stale(&ports).await.unwrap(), 1);
            drain(&ports).await; // every nudge is lost too
        }
        clock.advance(STALE_AFTER + chrono::TimeDelta::seconds(1));
        assert_eq!(sweep_stale(&ports).await.unwrap(), 1);
        let failed = get(&ports, &import.id).await.unwrap().unwrap();
        assert_eq!(failed.status, ImportStatus::Failed);
        assert!(failed.reason.unwrap().contains("repeated attempts"));
        assert!(failed.finished_at.is_some());
        assert!(drain(&ports).await.is_empty(), "no more nudges");
    }

    #[tokio::test]
    async fn an_import_whose_file_never_arrives_is_failed_once_abandoned() {
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let (ports, _dir) = ports(clock.clone());
        let (import, _) = create(
            &ports,
            NewImport {
                org_id: "org_1".into(),
                created_by: "usr_1".into(),
                filename: "a.csv".into(),
                size: 10,
                sha256: None,
                period: Period::new("2024-01-01".parse().unwrap(), "2024-12-31".parse().unwrap())
                    .unwrap(),
                name: None,
                gwp_set: None,
                replaces: None,
            },
        )
        .await
        .unwrap();
        clock.advance(STALE_AFTER * 2);
        assert_eq!(
            sweep_stale(&ports).await.unwrap(),
            0,
            "the upload is still pending"
        );
        clock.advance(ABANDONED_AFTER);
        assert_eq!(sweep_stale(&ports).await.unwrap(), 1);
        let failed = get(&ports, &import.id).await.unwrap().unwrap();
        assert_eq!(failed.status, ImportStatus::Failed);
        assert!(failed.reason.unwrap().contains("no checked file"));
    }

    #[tokio::test]
    async fn a_duplicate_message_after_completion_changes_nothing() {
        let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
        let (ports, _dir) = ports(clock);
        let import = uploaded(&ports).await;
        uploads::verify(&ports, &format!("quarantine/{}", import.upload_id))
            .await
            .unwrap();
        on_upload_checked(&ports, &import.upload_id).await.unwrap();
        let first = get(&ports, &import.id).await.unwrap().unwrap();
        on_upload_checked(&ports, &import.upload_id).await.unwrap();
        let again = get(&ports, &import.id).await.unwrap().unwrap();
        assert_eq!(first, again);
        let footprint = footprints::get(&ports, &footprint_id(&import.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(footprint.line_count, 1);
    }
}
