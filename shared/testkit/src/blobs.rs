//! Blobs conformance: the behaviour every Blobs adapter must show, run against the local filesystem
//! adapter (served by the local runtime) and against S3 (through moto). Cases share buckets and use
//! their own key prefix.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::blobs::{Blobs, Bucket, PresignedRequest, UploadPolicy};
use bytes::Bytes;

async fn send(request: &PresignedRequest, body: Option<Vec<u8>>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        if name != "content-length" {
            builder = builder.header(name, value);
        }
    }
    if let Some(body) = body {
        builder = builder.body(body);
    }
    builder
        .send()
        .await
        .expect("presigned request reaches the server")
}

pub async fn an_object_round_trips_with_its_content_type(blobs: Arc<dyn Blobs>, ns: &str) {
    let key = format!("{ns}/report.csv");
    blobs
        .put(
            Bucket::Exports,
            &key,
            Bytes::from_static(b"a,b\n1,2\n"),
            "text/csv",
        )
        .await
        .unwrap();
    let blob = blobs
        .get(Bucket::Exports, &key)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(
        (blob.bytes.as_ref(), blob.content_type.as_str()),
        (&b"a,b\n1,2\n"[..], "text/csv")
    );
    assert!(
        blobs.get(Bucket::Uploads, &key).await.unwrap().is_none(),
        "buckets are separate"
    );
    blobs
        .put(
            Bucket::Exports,
            &key,
            Bytes::from_static(b"new"),
            "text/plain",
        )
        .await
        .unwrap();
    assert_eq!(
        blobs
            .get(Bucket::Exports, &key)
            .await
            .unwrap()
            .unwrap()
            .bytes
            .as_ref(),
        b"new"
    );
    blobs.delete(Bucket::Exports, &key).await.unwrap();
    assert!(blobs.get(Bucket::Exports, &key).await.unwrap().is_none());
    blobs
        .delete(Bucket::Exports, &key)
        .await
        .expect("deleting a missing object succeeds");
}

pub async fn a_presigned_upload_stores_the_body_and_a_presigned_download_returns_it(
    blobs: Arc<dyn Blobs>,
    ns: &str,
) {
    let key = format!("{ns}/quarantine/doc.pdf");
    let body = b"%PDF-1.7 test document".to_vec();
    let policy = UploadPolicy {
        content_type: "application/pdf".into(),
        content_length: body.len() as u64,
        expires_in: Duration::from_secs(600),
    };
    let upload = blobs
        .presign_upload(Bucket::Uploads, &key, &policy)
        .await
        .unwrap();
    assert_eq!(upload.method, "PUT");
    assert!(
        upload
            .headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/pdf")
    );
    let response = send(&upload, Some(body.clone())).await;
    assert!(
        response.status().is_success(),
        "upload answered {}",
        response.status()
    );
    let stored = blobs
        .get(Bucket::Uploads, &key)
        .await
        .unwrap()
        .expect("uploaded");
    assert_eq!(stored.bytes.as_ref(), body.as_slice());

    let download = blobs
        .presign_download(Bucket::Uploads, &key, Duration::from_secs(60))
        .await
        .unwrap();
    let response = send(&download, None).await;
    assert!(
        response.status().is_success(),
        "download answered {}",
        response.status()
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), body.as_slice());
}

pub async fn unsafe_keys_and_unbounded_uploads_are_refused(blobs: Arc<dyn Blobs>, ns: &str) {
    for key in ["../escape", "/abs", "a//b", ".hidden", "sp ace"] {
        assert!(
            blobs
                .put(Bucket::Exports, key, Bytes::from_static(b"x"), "text/plain")
                .await
                .is_err(),
            "{key}"
        );
    }
    let key = format!("{ns}/big.bin");
    let too_big = UploadPolicy {
        content_type: "application/pdf".into(),
        content_length: 1 << 40,
        expires_in: Duration::from_secs(60),
    };
    assert!(
        blobs
            .presign_upload(Bucket::Uploads, &key, &too_big)
            .await
            .is_err()
    );
    let forever = UploadPolicy {
        content_type: "application/pdf".into(),
        content_length: 10,
        expires_in: Duration::from_secs(30 * 24 * 3600),
    };
    assert!(
        blobs
            .presign_upload(Bucket::Uploads, &key, &forever)
            .await
            .is_err()
    );
}

/// Declares one `#[tokio::test]` per blob conformance case. `$blobs` is an async expression giving an
/// `Arc<dyn Blobs>` whose presigned URLs are served.
#[macro_export]
macro_rules! blob_conformance_tests {
    ($blobs:expr) => {
        $crate::blob_conformance_tests!(@cases $blobs;
            an_object_round_trips_with_its_content_type,
            a_presigned_upload_stores_the_body_and_a_presigned_download_returns_it,
            unsafe_keys_and_unbounded_uploads_are_refused
        );
    };
    (@cases $blobs:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let blobs: std::sync::Arc<dyn amanar_core::blobs::Blobs> = $blobs.await;
                $crate::blobs::$case(blobs, &$crate::namespace()).await;
            }
        )*
    };
}
