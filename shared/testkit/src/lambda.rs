//! A stand-in for the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), so tests and benchmarks can run
//! the real function binaries exactly as Lambda does: the binary polls for the next event, and posts
//! a response or an error for it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

/// What a function answered for one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
    InitError(Value),
}

#[derive(Default)]
struct Inner {
    pending: Mutex<VecDeque<(String, Value)>>,
    arrived: Notify,
    first_poll: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Inner>,
    results: mpsc::UnboundedSender<(String, Outcome)>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    results: mpsc::UnboundedReceiver<(String, Outcome)>,
    next_id: u64,
}

fn parse(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn next(State(shared): State<Shared>) -> (HeaderMap, String) {
    shared
        .inner
        .first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let (id, event) = loop {
        let notified = shared.inner.arrived.notified();
        if let Some(next) = shared.inner.pending.lock().unwrap().pop_front() {
            break next;
        }
        notified.await;
    };
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from(deadline));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:eu-west-1:123456789012:function:test"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
    );
    (headers, event.to_string())
}

async fn respond(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> &'static str {
    let _ = shared.results.send((id, Outcome::Response(parse(&body))));
    "{}"
}

async fn error(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> &'static str {
    let _ = shared.results.send((id, Outcome::Error(parse(&body))));
    "{}"
}

async fn init_error(State(shared): State<Shared>, body: Bytes) -> &'static str {
    let _ = shared
        .results
        .send((String::new(), Outcome::InitError(parse(&body))));
    "{}"
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let (sender, results) = mpsc::unbounded_channel();
        let shared = Shared {
            inner: inner.clone(),
            results: sender,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            inner,
            results,
            next_id: 0,
        }
    }

    /// Queues an event for the function; returns its request id.
    pub fn invoke(&mut self, event: Value) -> String {
        self.next_id += 1;
        let id = format!("req-{:04}", self.next_id);
        self.inner
            .pending
            .lock()
            .unwrap()
            .push_back((id.clone(), event));
        self.inner.arrived.notify_waiters();
        id
    }

    /// Waits for the outcome of the next finished invocation.
    pub async fn outcome(&mut self, timeout: Duration) -> Option<(String, Outcome)> {
        tokio::time::timeout(timeout, self.results.recv())
            .await
            .ok()
            .flatten()
    }

    /// When the function first asked for work (the end of its initialisation).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.inner.first_poll.lock().unwrap()
    }

    /// Environment a function process needs to talk to this stand-in.
    pub fn env(&self, function: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}
