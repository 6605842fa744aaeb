//! The local runtime: one process serving every HTTP function at its API Gateway path, polling every
//! queue with its consumer, serving and verifying signed blob URLs (with the upload trigger), and
//! running the schedules. All data lives under the data directory and survives restarts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amanar_app::config::Config;
use amanar_app::wiring::LocalIdentitySurface;
use amanar_app::{Wiring, jobs, routes};
use amanar_core::messages::UploadEvent;
use amanar_core::queue::{self, Completion};
use amanar_core::{Blobs, Bucket, JobHandler, Ports, QueueName};
use amanar_embedded::{LocalBlobs, Signature, SignedAccess};
use amanar_http::ApiError;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a message stays hidden while a local consumer works on it.
const VISIBILITY: Duration = Duration::from_secs(60);
/// How long an idle poller waits for a message before checking for shutdown.
const POLL_WAIT: Duration = Duration::from_secs(1);

/// A started runtime. Dropping it aborts every task at once; [`Running::shutdown`] stops gracefully.
pub struct Running {
    pub addr: SocketAddr,
    /// What the mailbox asks for (`X-Local-Token`) when the runtime listens beyond loopback.
    pub local_token: Option<String>,
    pub wiring: Wiring,
    ports: Ports,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting requests, lets in-flight requests and jobs finish, and waits for every task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                tracing::error!(%error, "a runtime task failed");
            }
        }
    }

    /// Waits until a task ends on its own (the server failing), which should not happen.
    pub async fn wait_stopped(&mut self) {
        self.tasks.join_next().await;
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }
}

#[derive(Clone)]
struct BlobRoutes {
    blobs: LocalBlobs,
    ports: Ports,
}

/// A signed blob request that its signature does not allow.
fn bad_signature(detail: impl Into<String>) -> ApiError {
    ApiError::Forbidden {
        slug: "bad-signature",
        detail: detail.into(),
    }
}

/// The header the mailbox asks for when the runtime listens beyond loopback.
pub const LOCAL_TOKEN_HEADER: &str = "x-local-token";

/// Guards the local route that reveals secrets (the mailbox, with every mailed code). Beyond
/// loopback it needs the token printed at start. On loopback it needs a loopback `Host`, so a web
/// page that rebinds its own name to 127.0.0.1 cannot read it from the developer's browser.
async fn local_token_guard(
    State(token): State<Option<Arc<str>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use subtle::ConstantTimeEq;
    if token.is_none() && !loopback_host(request.headers()) {
        return ApiError::Forbidden {
            slug: "local-host-required",
            detail: "The local mailbox answers only requests addressed to a loopback host (127.0.0.1, localhost, [::1]).".into(),
        }
        .into_response();
    }
    if let Some(token) = token {
        let given = request
            .headers()
            .get(LOCAL_TOKEN_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(token.as_bytes())) {
            return ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                slug: "local-token-required",
                title: "Local token required",
                detail: "This runtime listens beyond loopback: the mailbox needs the X-Local-Token it printed at start.".into(),
                retry_after_secs: None,
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether the request's `Host` names a loopback address or `localhost` (with or without a port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The local identity provider's public surface: `GET /.well-known/jwks.json`, and
/// `GET /_local/mailbox?to=` with the mail it sent (newest first). Neither exists in AWS builds:
/// Cognito publishes its own JWKS and sends real mail.
fn identity_routes(identity: LocalIdentitySurface, token: Option<Arc<str>>) -> Router {
    #[derive(serde::Deserialize)]
    struct MailboxQuery {
        to: String,
    }

    async fn jwks(State(identity): State<LocalIdentitySurface>) -> Response {
        axum::Json(identity.jwks).into_response()
    }

    async fn mailbox(
        State(identity): State<LocalIdentitySurface>,
        amanar_http::Query(query): amanar_http::Query<MailboxQuery>,
    ) -> Result<Response, ApiError> {
        let to = query.to.trim().to_lowercase();
        let mail = identity.mailbox.read(&to).await?;
        Ok(axum::Json(serde_json::json!({ "items": mail })).into_response())
    }

    let local_only = Router::new()
        .route("/_local/mailbox", axum::routing::get(mailbox))
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            local_token_guard,
        ));
    Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .merge(local_only)
        .with_state(identity)
}

/// The payment simulator's routes: `POST /_local/payments/{paymentId}/confirm` (a card that pays)
/// and `/fail` (a declined card). Each builds the event Stripe would send, signs it with the
/// webhook secret and delivers it to the webhook function, exactly as Stripe would; the answer
/// says what the webhook answered. Guarded like the mailbox: paying for free is local-only.
fn payment_routes(
    payments: amanar_orders::LocalPayments,
    webhook: Router,
    token: Option<Arc<str>>,
) -> Router {
    use amanar_orders::payments::{Settle, SettleError};
    use tower::ServiceExt;

    #[derive(Clone)]
    struct PaymentRoutes {
        payments: amanar_orders::LocalPayments,
        webhook: Router,
    }

    async fn settle(
        routes: PaymentRoutes,
        payment_id: String,
        how: Settle,
    ) -> Result<Response, ApiError> {
        let event = routes
            .payments
            .settle(&payment_id, how)
            .await
            .map_err(|e| match e {
                SettleError::NotFound => ApiError::NotFound,
                SettleError::State(state) => ApiError::Conflict {
                    slug: "payment-state",
                    detail: format!("The payment is {state}."),
                },
                SettleError::Payment(e) => ApiError::Unavailable(e.to_string()),
            })?;
        let request = axum::http::Request::post("/v1/webhooks/stripe")
            .header(header::CONTENT_TYPE, "application/json")
            .header("stripe-signature", event.signature)
            .body(axum::body::Body::from(event.payload))
            .map_err(ApiError::unexpected)?;
        let answer = routes
            .webhook
            .oneshot(request)
            .await
            .map_err(ApiError::unexpected)?;
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 64 * 1024)
            .await
            .map_err(ApiError::unexpected)?;
        let webhook: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        Ok(axum::Json(serde_json::json!({
            "paymentId": payment_id,
            "webhookStatus": status.as_u16(),
            "webhook": webhook,
        }))
        .into_response())
    }

    async fn confirm(
        State(routes): State<PaymentRoutes>,
        Path(payment_id): Path<String>,
    ) -> Result<Response, ApiError> {
        settle(routes, payment_id, Settle::Confirm).await
    }

    async fn fail(
        State(routes): State<PaymentRoutes>,
        Path(payment_id): Path<String>,
    ) -> Result<Response, ApiError> {
        settle(routes, payment_id, Settle::Fail).await
    }

    Router::new()
        .route(
            "/_local/payments/{payment_id}/confirm",
            axum::routing::post(confirm),
        )
        .route(
            "/_local/payments/{payment_id}/fail",
            axum::routing::post(fail),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            local_token_guard,
        ))
        .with_state(PaymentRoutes { payments, webhook })
}

/// Serves `PUT`/`GET /_local/blobs/{bucket}/{key}` for URLs signed by [`LocalBlobs`]. A verified
/// upload into `uploads/quarantine/` queues an object-created event, as S3 would notify the
/// verifier in AWS.
fn blob_routes(blobs: LocalBlobs, ports: Ports) -> Router {
    async fn download(
        State(routes): State<BlobRoutes>,
        Path((bucket, key)): Path<(String, String)>,
        Query(signature): Query<Signature>,
    ) -> Result<Response, ApiError> {
        let bucket = Bucket::parse(&bucket).ok_or(ApiError::NotFound)?;
        match routes
            .blobs
            .verify("GET", bucket, &key, &signature, routes.ports.clock.now())
        {
            Some(SignedAccess::Download) => {}
            _ => {
                return Err(bad_signature(
                    "The URL is not validly signed or has expired.",
                ));
            }
        }
        let blob = routes
            .blobs
            .get(bucket, &key)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(([(header::CONTENT_TYPE, blob.content_type)], blob.bytes).into_response())
    }

    async fn upload(
        State(routes): State<BlobRoutes>,
        Path((bucket, key)): Path<(String, String)>,
        Query(signature): Query<Signature>,
        headers: HeaderMap,
        body: axum::body::Body,
    ) -> Result<StatusCode, ApiError> {
        let bucket = Bucket::parse(&bucket).ok_or(ApiError::NotFound)?;
        let Some(SignedAccess::Upload {
            content_type,
            content_length,
        }) = routes
            .blobs
            .verify("PUT", bucket, &key, &signature, routes.ports.clock.now())
        else {
            return Err(bad_signature(
                "The URL is not validly signed or has expired.",
            ));
        };
        let sent_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent_type != content_type {
            return Err(bad_signature(format!(
                "This URL accepts Content-Type {content_type} only."
            )));
        }
        // The signature and the declared length are checked before a byte of the body is read,
        // and no more than the signed length is ever read.
        let wrong_length =
            || bad_signature(format!("This URL accepts exactly {content_length} bytes."));
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n != content_length) {
            return Err(wrong_length());
        }
        let body = axum::body::to_bytes(body, content_length as usize)
            .await
            .map_err(|_| wrong_length())?;
        if body.len() as u64 != content_length {
            return Err(wrong_length());
        }
        routes.blobs.put(bucket, &key, body, &content_type).await?;
        if bucket == Bucket::Uploads && key.starts_with("quarantine/") {
            let event = UploadEvent::ObjectCreated {
                key,
                size: content_length,
            };
            routes
                .ports
                .queue
                .send(QueueName::Uploads, &event.to_body(), Duration::ZERO)
                .await?;
        }
        Ok(StatusCode::OK)
    }

    Router::new()
        .route(
            &format!("{}/{{bucket}}/{{*key}}", amanar_embedded::BLOB_ROUTE_PREFIX),
            get(download).put(upload),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            amanar_core::blobs::MAX_UPLOAD_BYTES as usize,
        ))
        .with_state(BlobRoutes { blobs, ports })
}

/// Polls one queue until shutdown, handing each batch to its consumer.
async fn poll(
    ports: Ports,
    name: QueueName,
    handler: Arc<dyn JobHandler>,
    retry_base: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let received = tokio::select! {
            received = ports.queue.receive(name, 10, VISIBILITY, POLL_WAIT) => received,
            _ = stop.changed() => break,
        };
        match received {
            Ok(messages) if messages.is_empty() => {}
            Ok(messages) => {
                queue::process_batch(
                    &*ports.queue,
                    name,
                    &*handler,
                    messages,
                    retry_base,
                    Completion::Delete,
                )
                .await;
            }
            Err(error) => {
                tracing::error!(queue = %name, %error, "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Runs the housekeeping schedule until shutdown: once at start, then at every interval.
async fn schedule(
    housekeeping: jobs::Housekeeping,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = housekeeping.run().await {
                    tracing::error!(%error, "housekeeping failed");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Wiring(#[from] amanar_core::DepsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot make the first admin from AMANAR_ADMIN_EMAIL/AMANAR_ADMIN_PASSWORD: {0}")]
    FirstAdmin(String),
    #[error(
        "refusing to listen on {0}: the local runtime serves every mailed code at /_local/mailbox; listen on loopback (127.0.0.1), or pass --expose (AMANAR_EXPOSE=true) to protect the mailbox with a token"
    )]
    NotLoopback(SocketAddr),
}

/// A fresh token for the mailbox.
fn local_token() -> Result<String, StartError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| amanar_core::DepsError::new("the local token", e))?;
    Ok(hex::encode(bytes))
}

/// Starts the runtime: binds the address (port 0 picks a free one), then serves, polls and schedules
/// in background tasks.
pub async fn start(mut config: Config) -> Result<Running, StartError> {
    let exposed = !config.addr.ip().is_loopback();
    if exposed && !config.expose {
        return Err(StartError::NotLoopback(config.addr));
    }
    let token: Option<Arc<str>> = if exposed {
        Some(local_token()?.into())
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.addr,
        source,
    })?;
    // Signed URLs must point at the address actually bound (port 0 in tests).
    if let amanar_app::config::BlobBackend::Local { public_url } = &mut config.blobs
        && public_url.ends_with(":0")
    {
        *public_url = format!("http://{addr}");
    }
    if let amanar_app::config::IdentityBackend::Local { issuer } = &mut config.identity
        && issuer.ends_with(":0")
    {
        *issuer = format!("http://{addr}");
    }
    if config.social_callback_url.contains(":0/") {
        config.social_callback_url = format!("http://{addr}/v1/auth/social/callback");
    }
    let wiring = Wiring::new(config.clone());
    let ports = wiring.ports().await?;
    if let Some((email, password)) = &config.first_admin {
        amanar_accounts::Accounts::new(
            wiring.identity().await?,
            ports.table.clone(),
            ports.clock.clone(),
        )
        .ensure_admin(email, password)
        .await
        .map_err(|e| StartError::FirstAdmin(e.to_string()))?;
        tracing::info!("first admin ready");
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let mut app = routes::api_router(&wiring).await?;
    if let Some(blobs) = wiring.local_blobs().await? {
        app = app.merge(blob_routes(blobs, ports.clone()));
    }
    if let Some(identity) = wiring.local_identity().await? {
        app = app.merge(identity_routes(identity, token.clone()));
    }
    if let Some(payments) = wiring.local_payments().await? {
        let webhook = routes::function_router(amanar_orders::api::STRIPE_WEBHOOK, &wiring).await?;
        app = app.merge(payment_routes(payments, webhook, token.clone()));
    }
    let mut server_stop = stopped.clone();
    tasks.spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        };
        // The local routes are merged after the API's layers, so they get the headers every response
        // carries here.
        let app = app.layer(axum::middleware::map_response(
            |mut response: Response| async move {
                amanar_http::request_id::every_response_headers(response.headers_mut());
                response
            },
        ));
        // The peer address reaches the per-address limit of `/v1/auth/*` as `ConnectInfo`.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    for (name, handler) in jobs::consumers(&wiring).await? {
        tasks.spawn(poll(
            ports.clone(),
            name,
            handler,
            config.retry_base,
            stopped.clone(),
        ));
    }
    tasks.spawn(schedule(
        jobs::Housekeeping::new(wiring.clone()),
        config.housekeeping_every,
        stopped.clone(),
    ));
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "amanar-local started");
    Ok(Running {
        addr,
        local_token: token.map(|t| t.to_string()),
        wiring,
        ports,
        stop,
        tasks,
    })
}
