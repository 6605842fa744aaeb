//! Checked uploads on the embedded adapters: a lost object-created event never leaves an upload
//! pending forever, because housekeeping sweeps it.

mod common;

use amanar_core::Bucket;
use amanar_platform::uploads::{self, NewUpload, UploadStatus};
use common::ports;

fn declared(size: usize) -> NewUpload {
    NewUpload {
        owner: "usr_1".into(),
        purpose: "activity_import".into(),
        reference: None,
        filename: "activities.csv".into(),
        content_type: "text/csv".into(),
        size: size as u64,
        sha256: None,
    }
}

#[tokio::test]
async fn an_upload_whose_event_was_lost_is_checked_by_the_next_housekeeping_after_ten_minutes() {
    let (ports, clock) = ports();
    let csv = b"date,activity,amount\n2026-01-01,electricity,120\n".to_vec();
    let (upload, _) = uploads::create(&ports, declared(csv.len())).await.unwrap();
    // The file arrived, but its object-created event never did.
    ports
        .blobs
        .put(
            Bucket::Uploads,
            &upload.quarantine_key(),
            csv.into(),
            "text/csv",
        )
        .await
        .unwrap();

    assert_eq!(
        uploads::sweep_stale(&ports).await.unwrap(),
        0,
        "a fresh upload is left to its event"
    );
    clock.advance(chrono::TimeDelta::minutes(11));
    for task in [amanar_platform::canary::SEND, uploads::SWEEP] {
        (task.run)(&ports).await.unwrap();
    }

    let swept = uploads::get(&ports, &upload.id).await.unwrap().unwrap();
    assert_eq!(swept.status, UploadStatus::Accepted);
    assert!(
        ports
            .blobs
            .get(Bucket::Uploads, &swept.object_key())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        uploads::sweep_stale(&ports).await.unwrap(),
        0,
        "a settled upload leaves the pending index"
    );
}

#[tokio::test]
async fn a_declared_upload_whose_file_never_came_is_rejected_once_its_url_expired() {
    let (ports, clock) = ports();
    let (upload, _) = uploads::create(&ports, declared(10)).await.unwrap();
    clock.advance(chrono::TimeDelta::minutes(11));
    assert_eq!(
        uploads::sweep_stale(&ports).await.unwrap(),
        0,
        "the URL may still be used"
    );
    clock.advance(chrono::TimeDelta::minutes(20));
    assert_eq!(uploads::sweep_stale(&ports).await.unwrap(), 1);
    let expired = uploads::get(&ports, &upload.id).await.unwrap().unwrap();
    assert_eq!(expired.status, UploadStatus::Rejected);
    assert_eq!(
        expired.reason.as_deref(),
        Some("no file arrived before the upload URL expired")
    );
}

#[tokio::test]
async fn a_duplicate_event_after_filing_changes_nothing() {
    let (ports, _) = ports();
    let pdf = b"%PDF-1.4 tiny".to_vec();
    let (upload, _) = uploads::create(
        &ports,
        NewUpload {
            content_type: "application/pdf".into(),
            ..declared(pdf.len())
        },
    )
    .await
    .unwrap();
    ports
        .blobs
        .put(
            Bucket::Uploads,
            &upload.quarantine_key(),
            pdf.into(),
            "application/pdf",
        )
        .await
        .unwrap();
    uploads::verify(&ports, &upload.quarantine_key())
        .await
        .unwrap();
    let first = uploads::get(&ports, &upload.id).await.unwrap().unwrap();
    // A redelivered event finds the quarantine empty and the upload settled: it is a no-op.
    uploads::verify(&ports, &upload.quarantine_key())
        .await
        .unwrap();
    assert_eq!(
        uploads::get(&ports, &upload.id).await.unwrap().unwrap(),
        first
    );
}
