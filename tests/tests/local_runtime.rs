//! Journeys through the local runtime over real HTTP: what a developer sees after `amanar-local`.

use std::time::{Duration, Instant};

use amanar_core::messages::{Canary, JobMessage};
use amanar_core::table::{Item, Key, WriteOp};
use amanar_core::{Bucket, QueueName};
use amanar_journeys::{Platform, start_with, vars};
use amanar_local::Running;
use amanar_platform::uploads::{self, NewUpload, UploadStatus};
use serde_json::{Value, json};

/// Housekeeping once at start, then not again mid-journey (hourly); job retries backing off from 100 ms.
const TIMINGS: &[(&str, &str)] = &[
    (vars::HOUSEKEEPING_SECS, "3600"),
    (vars::RETRY_BASE_MS, "100"),
];

fn url(running: &Running, path: &str) -> String {
    format!("http://{}{path}", running.addr)
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_table_and_the_job_pipeline_once_the_first_canary_ran() {
    let (running, _dir) = start_with(TIMINGS).await;
    let client = reqwest::Client::new();
    let health: Value = eventually("the first canary", async || {
        let health: Value = client
            .get(url(&running, "/v1/health"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (health["checks"]["jobs"]["status"] == "ok").then_some(health)
    })
    .await;
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(health["checks"]["table"]["status"], json!("ok"));
    assert!(health["checks"]["jobs"]["lastCanaryAt"].is_string());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_wrong_methods_get_problem_documents_with_the_request_id() {
    let (running, _dir) = start_with(TIMINGS).await;
    let client = reqwest::Client::new();
    let missing = client
        .get(url(&running, "/v1/no-such-thing"))
        .header("x-request-id", "client-chosen-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(missing.headers()["x-request-id"], "client-chosen-id-1");
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(
        (problem["status"].clone(), problem["requestId"].clone()),
        (json!(404), json!("client-chosen-id-1"))
    );

    let wrong = client
        .delete(url(&running, "/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    let problem: Value = wrong.json().await.unwrap();
    assert_eq!(
        problem["type"],
        json!("https://docs.amanarcarbon.com/problems/method-not-allowed")
    );

    let odd_id = client
        .get(url(&running, "/v1/health"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(
        odd_id.headers()["x-request-id"],
        "<script>",
        "unsafe request ids are replaced"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_docs_page_describe_every_route() {
    let (running, _dir) = start_with(TIMINGS).await;
    let document: Value = reqwest::get(url(&running, "/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], json!("3.1.0"));
    for (method, path) in amanar_app::routes::route_table() {
        assert!(
            document["paths"][&path][method.to_lowercase()].is_object(),
            "{method} {path} is documented"
        );
    }
    let page = reqwest::get(url(&running, "/docs")).await.unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/v1/health") && html.contains("problem+json"));
    running.shutdown().await;
}

async fn declare_upload(
    running: &Running,
    content_type: &str,
    body: &[u8],
) -> (uploads::Upload, amanar_core::PresignedRequest) {
    let new = NewUpload {
        owner: "usr_journey".into(),
        purpose: "project_document".into(),
        reference: None,
        filename: "evidence.pdf".into(),
        content_type: content_type.into(),
        size: body.len() as u64,
        sha256: None,
    };
    uploads::create(running.ports(), new).await.unwrap()
}

async fn put(
    request: &amanar_core::PresignedRequest,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    reqwest::Client::new()
        .put(&request.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_its_signed_url_is_checked_and_filed_by_the_trigger() {
    let (running, _dir) = start_with(TIMINGS).await;
    let pdf = b"%PDF-1.7 real enough".to_vec();
    let (good, good_url) = declare_upload(&running, "application/pdf", &pdf).await;
    let fake = b"MZ not a pdf at all!".to_vec();
    let (bad, bad_url) = declare_upload(&running, "application/pdf", &fake).await;

    assert_eq!(
        put(&good_url, "text/plain", pdf.clone()).await.status(),
        403,
        "the signed content type is enforced"
    );
    assert_eq!(
        put(&good_url, "application/pdf", b"%PDF-short".to_vec())
            .await
            .status(),
        403,
        "the signed length is enforced"
    );
    let tampered = amanar_core::PresignedRequest {
        url: good_url.url.replace("sig=", "sig=00"),
        ..good_url.clone()
    };
    assert_eq!(
        put(&tampered, "application/pdf", pdf.clone())
            .await
            .status(),
        403
    );

    assert_eq!(
        put(&good_url, "application/pdf", pdf.clone())
            .await
            .status(),
        200
    );
    assert_eq!(put(&bad_url, "application/pdf", fake).await.status(), 200);
    let ports = running.ports().clone();
    let accepted = eventually("the good upload to be checked", async || {
        uploads::get(&ports, &good.id)
            .await
            .unwrap()
            .filter(|u| u.status != UploadStatus::Pending)
    })
    .await;
    assert_eq!(accepted.status, UploadStatus::Accepted);
    let rejected = eventually("the fake upload to be checked", async || {
        uploads::get(&ports, &bad.id)
            .await
            .unwrap()
            .filter(|u| u.status != UploadStatus::Pending)
    })
    .await;
    assert_eq!(
        (rejected.status, rejected.reason.as_deref()),
        (
            UploadStatus::Rejected,
            Some("content is not application/pdf")
        )
    );
    let filed = ports
        .blobs
        .get(Bucket::Uploads, &accepted.object_key())
        .await
        .unwrap()
        .expect("filed under accepted/");
    assert_eq!(filed.bytes.as_ref(), pdf.as_slice());

    let download = ports
        .blobs
        .presign_download(
            Bucket::Uploads,
            &accepted.object_key(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let fetched = reqwest::get(&download.url).await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "application/pdf");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), pdf.as_slice());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_data_and_queued_work_survive_a_restart() {
    let (running, dir) = start_with(TIMINGS).await;
    let mut item = Item::new();
    item.insert("pk".into(), json!("JOURNEY#restart"));
    item.insert("sk".into(), json!("NOTE"));
    item.insert("text".into(), json!("still here"));
    running
        .ports()
        .table
        .write(vec![WriteOp::put(item.clone())])
        .await
        .unwrap();
    // Nothing consumes the dead-letter queue, so the message waits there across the restart.
    let parked = Canary {
        sent_at: chrono::Utc::now(),
    }
    .to_body();
    running
        .ports()
        .queue
        .send(QueueName::JobsDlq, &parked, Duration::ZERO)
        .await
        .unwrap();
    running.shutdown().await;

    let (running, _dir) = Platform::new()
        .set_all(TIMINGS)
        .reusing_data_dir(dir)
        .start()
        .await;
    assert_eq!(
        running
            .ports()
            .table
            .get(&Key::new("JOURNEY#restart", "NOTE"))
            .await
            .unwrap(),
        Some(item)
    );
    let received = running
        .ports()
        .queue
        .receive(
            QueueName::JobsDlq,
            10,
            Duration::from_secs(30),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, parked);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_needs_expose_and_then_the_mailbox_needs_the_printed_token() {
    let (refused, _dir) = Platform::new()
        .set(vars::ADDR, "0.0.0.0:0")
        .try_start()
        .await;
    let error = refused.err().expect("0.0.0.0 is refused without --expose");
    assert!(error.to_string().contains("--expose"), "{error}");

    let (running, _dir) = Platform::new()
        .set(vars::ADDR, "0.0.0.0:0")
        .set(vars::EXPOSE, "true")
        .start()
        .await;
    let token = running.local_token.clone().expect("a token when exposed");
    let mailbox = format!(
        "http://127.0.0.1:{}/_local/mailbox?to=a@example.com",
        running.addr.port()
    );
    let client = reqwest::Client::new();
    let anonymous = client.get(&mailbox).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .get(&mailbox)
        .header(amanar_local::LOCAL_TOKEN_HEADER, "0".repeat(token.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = client
        .get(&mailbox)
        .header(amanar_local::LOCAL_TOKEN_HEADER, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    // Public routes stay public.
    let health = client
        .get(format!(
            "http://127.0.0.1:{}/v1/health",
            running.addr.port()
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(health.status(), 401);
    running.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_the_signing_secret_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (running, dir) = start_with(TIMINGS).await;
    for file in ["amanar.redb", "local-secret"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is {:o}", mode & 0o777);
    }
    running.shutdown().await;
}

/// Sends a PUT's head and the first bytes of a body announced as `announced` bytes long, and
/// returns the status line the runtime answers with, without ever sending the rest.
async fn put_head_only(running: &Running, url: &str, announced: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = url.split_once(&running.addr.to_string()).unwrap().1;
    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/pdf\r\nContent-Length: {announced}\r\n\r\n%PDF-1.7",
        running.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the runtime answers without waiting for the body");
    String::from_utf8_lossy(&answer[..read.unwrap()])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_put_is_refused_before_its_body_is_read_when_the_url_or_the_length_is_wrong() {
    let (running, _dir) = start_with(TIMINGS).await;
    let pdf = b"%PDF-1.7 real enough".to_vec();
    let (_, url) = declare_upload(&running, "application/pdf", &pdf).await;
    let forged = url.url.replace("sig=", "sig=00");
    // 90 MiB announced, 8 bytes sent: an answer at all means nothing waited for the rest.
    let unsigned = put_head_only(&running, &forged, 90 * 1024 * 1024).await;
    assert!(unsigned.contains(" 403 "), "{unsigned}");
    let too_long = put_head_only(&running, &url.url, 90 * 1024 * 1024).await;
    assert!(too_long.contains(" 403 "), "{too_long}");
    // The right URL and length still work.
    assert_eq!(put(&url, "application/pdf", pdf).await.status(), 200);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_loopback_the_mailbox_answers_only_a_loopback_host_and_local_routes_say_nosniff() {
    let (running, _dir) = start_with(TIMINGS).await;
    let client = reqwest::Client::new();
    let mailbox = url(&running, "/_local/mailbox?to=a@example.com");
    // A page that rebinds evil.example to 127.0.0.1 sends its own name as the Host.
    let rebound = client
        .get(&mailbox)
        .header("host", format!("evil.example:{}", running.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    for host in ["localhost", "127.0.0.1"] {
        let direct = client
            .get(&mailbox)
            .header("host", format!("{host}:{}", running.addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(direct.status(), 200, "{host}");
        assert_eq!(direct.headers()["x-content-type-options"], "nosniff");
    }
    let jwks = client
        .get(url(&running, "/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.headers()["x-content-type-options"], "nosniff");
    running.shutdown().await;
}
