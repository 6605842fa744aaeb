//! The shared HTTP layer on a small router: bad input of every kind is a 4xx problem, and
//! idempotency keys replay, refuse reuse and release on server errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use amanar_core::SystemClock;
use amanar_http::{ApiError, Idempotency, Json};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    quantity: u32,
}

fn app() -> (Router, Arc<AtomicUsize>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let table = Arc::new(amanar_embedded::EmbeddedStore::open(&dir).unwrap().table);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new()
        .route(
            "/orders",
            post(move |Json(order): Json<Order>| {
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    if order.quantity == 0 {
                        return Err(ApiError::unexpected("simulated outage"));
                    }
                    Ok((
                        StatusCode::CREATED,
                        Json(json!({"orderId": format!("ord_{n}"), "quantity": order.quantity})),
                    ))
                }
            }),
        )
        .route(
            "/panic",
            post(|| async {
                if true {
                    panic!("boom");
                }
                StatusCode::OK
            }),
        );
    let idempotency = Idempotency {
        table,
        clock: Arc::new(SystemClock),
        body_limit: 1024,
        exempt_prefixes: &[],
    };
    (amanar_http::finish(router, idempotency, None, None), calls)
}

async fn send(
    app: &Router,
    body: &str,
    key: Option<&str>,
    content_type: &str,
) -> (StatusCode, Value, http::HeaderMap) {
    let mut request = Request::post("/orders").header("content-type", content_type);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        parts.headers,
    )
}

#[tokio::test]
async fn bad_bodies_get_precise_problems_and_never_reach_the_handler() {
    let (app, calls) = app();
    let cases = [
        (r#"{"quantity": 1"#, "application/json", 400, "bad-request"),
        (
            r#"{"quantity": "one"}"#,
            "application/json",
            422,
            "validation",
        ),
        (
            r#"{"quantity": 1, "price": 2}"#,
            "application/json",
            422,
            "validation",
        ),
        (
            r#"{"quantity": 1}"#,
            "text/plain",
            415,
            "unsupported-media-type",
        ),
    ];
    for (body, content_type, status, slug) in cases {
        let (got, problem, headers) = send(&app, body, None, content_type).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(
            problem["type"],
            json!(format!("https://docs.amanarcarbon.com/problems/{slug}"))
        );
    }
    let (_, problem, _) = send(&app, r#"{"quantity": "one"}"#, None, "application/json").await;
    assert_eq!(problem["errors"][0]["field"], json!("quantity"));
    let (status, problem, _) = send(
        &app,
        &format!(r#"{{"quantity": 1, "pad": "{}"}}"#, "x".repeat(2000)),
        None,
        "application/json",
    )
    .await;
    assert_eq!(
        (status.as_u16(), problem["status"].clone()),
        (413, json!(413))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_without_internals() {
    let (app, _) = app();
    let response = app
        .oneshot(Request::post("/panic").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("boom"), "{text}");
    assert!(text.contains("problems/internal"));
}

#[tokio::test]
async fn a_replayed_key_returns_the_first_response_without_running_twice() {
    let (app, calls) = app();
    let (first, body, _) = send(
        &app,
        r#"{"quantity": 3}"#,
        Some("key-1"),
        "application/json",
    )
    .await;
    let (again, replayed, headers) = send(
        &app,
        r#"{"quantity": 3}"#,
        Some("key-1"),
        "application/json",
    )
    .await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(body, replayed);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_a_conflict() {
    let (app, calls) = app();
    send(
        &app,
        r#"{"quantity": 3}"#,
        Some("key-2"),
        "application/json",
    )
    .await;
    let (status, problem, _) = send(
        &app,
        r#"{"quantity": 4}"#,
        Some("key-2"),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        problem["type"],
        json!("https://docs.amanarcarbon.com/problems/idempotency-key-reused")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_error_releases_the_key_for_a_retry() {
    let (app, calls) = app();
    let (status, _, _) = send(
        &app,
        r#"{"quantity": 0}"#,
        Some("key-3"),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _, _) = send(
        &app,
        r#"{"quantity": 0}"#,
        Some("key-3"),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the retry ran again");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_run_the_handler_once() {
    let (app, calls) = app();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            send(
                &app,
                r#"{"quantity": 5}"#,
                Some("key-4"),
                "application/json",
            )
            .await
            .0
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let (app, _) = app();
    let (status, problem, _) = send(
        &app,
        r#"{"quantity": 1}"#,
        Some(&"k".repeat(300)),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], json!("Idempotency-Key"));
}
