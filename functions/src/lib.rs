//! Lambda entry points. Each binary in `src/bin/` is one line calling a function here, which reads
//! the configuration and hands every event to library code (the user pool's pre-token trigger
//! reads only its own two settings: see [`run_pre_token`]). A binary names its own function (an
//! HTTP function of a context, or a worker), so it links and builds only what that function uses:
//! `api-health` builds its DynamoDB table and the layers every function shares (tokens and API
//! keys, rate limits, idempotency), and links no other SDK client and no other context.

use std::time::Duration;

use amanar_app::{Config, Face, Wiring, routes};
use amanar_core::FromDeps;
use amanar_core::queue::{self, Completion};
use amanar_core::{JobError, JobHandler, Ports, Queue, QueueName, Received};
use amanar_http::HttpFunction;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Serialize;

/// First retry delay for a failed message (doubles per attempt, through ChangeMessageVisibility).
const RETRY_BASE: Duration = Duration::from_secs(10);

fn cold_start() -> Result<Wiring, Error> {
    let config = Config::from_env(Face::Lambda)?;
    amanar_http::telemetry::init(config.json_logs);
    let wiring = Wiring::new(config);
    wiring.check_build()?;
    Ok(wiring)
}

/// Serves one HTTP function's routes behind API Gateway, with only its own state built. `binary`
/// is `env!("CARGO_BIN_NAME")`: a binary wired to another function's routes refuses to start.
pub async fn run_http<S>(function: HttpFunction<S>, binary: &str) -> Result<(), Error>
where
    S: FromDeps<Wiring> + Clone,
{
    if function.name != binary {
        return Err(format!("binary {binary} runs the function {}", function.name).into());
    }
    let wiring = cold_start()?;
    let router = routes::function_router(function, &wiring)
        .await?
        .layer(axum::middleware::map_request(with_client_addr));
    lambda_http::run(router).await
}

/// Hands API Gateway's `sourceIp` to the per-address limit of `/v1/auth/*`
/// ([`amanar_http::ClientAddr`]). It is the address API Gateway saw, so no forwarded header a
/// caller can write comes into it.
async fn with_client_addr(mut request: axum::extract::Request) -> axum::extract::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let source = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = source.and_then(|ip| ip.parse().ok()) {
        request.extensions_mut().insert(amanar_http::ClientAddr(ip));
    }
    request
}

/// Lambda's partial batch response: the messages to deliver again.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemFailure {
    pub item_identifier: String,
}

/// Handles one SQS batch: the same processing as the local poller, except that Lambda deletes the
/// messages not reported as failed.
pub async fn handle_sqs_batch(
    queue: &dyn Queue,
    name: QueueName,
    handler: &dyn JobHandler,
    event: SqsEvent,
) -> BatchResponse {
    let messages = event
        .records
        .into_iter()
        .map(|record| Received {
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
            receipt: record.receipt_handle.unwrap_or_default(),
        })
        .collect();
    let outcome = queue::process_batch(
        queue,
        name,
        handler,
        messages,
        RETRY_BASE,
        Completion::ReportToLambda,
    )
    .await;
    BatchResponse {
        batch_item_failures: outcome
            .failed
            .into_iter()
            .map(|item_identifier| BatchItemFailure { item_identifier })
            .collect(),
    }
}

/// Consumes one SQS queue with the consumer the app assigns to it.
pub async fn run_sqs_worker(name: QueueName) -> Result<(), Error> {
    let wiring = cold_start()?;
    let queue = wiring.queue().await?;
    let handler = amanar_app::jobs::consumer(&wiring, name)
        .await?
        .ok_or_else(|| format!("no consumer reads queue {name}"))?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let (queue, handler) = (queue.clone(), handler.clone());
        async move { Ok::<_, Error>(handle_sqs_batch(&*queue, name, &*handler, event.payload).await) }
    }))
    .await
}

/// S3 event keys are URL-encoded, with `+` for spaces.
fn decode_key(key: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && hex(bytes[i + 1]).is_some()
                && hex(bytes[i + 2]).is_some() =>
            {
                out.push(hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks each uploaded object. A retryable failure fails the invocation so S3's asynchronous
/// invocation retries it; a poison event is logged and dropped.
pub async fn handle_s3_event(ports: &Ports, event: S3Event) -> Result<usize, Error> {
    let mut checked = 0;
    for record in event.records {
        let Some(key) = record.s3.object.key.as_deref().map(decode_key) else {
            continue;
        };
        match amanar_platform::uploads::verify(ports, &key).await {
            Ok(()) => checked += 1,
            Err(JobError::Poison(reason)) => {
                tracing::error!(key, reason, "dropping an upload event")
            }
            Err(JobError::Retry(reason)) => {
                return Err(format!("upload check of {key} failed: {reason}").into());
            }
        }
    }
    Ok(checked)
}

pub async fn run_upload_verifier() -> Result<(), Error> {
    let ports = cold_start()?.ports().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let ports = ports.clone();
        async move {
            handle_s3_event(&ports, event.payload)
                .await
                .map(|checked| serde_json::json!({ "checked": checked }))
        }
    }))
    .await
}

/// The user pool's pre-token-generation trigger (`amanar_cognito::pre_token`). Unlike the other
/// entry points it reads none of the platform's configuration: the pool names itself in each
/// event, and the pool's own variables would make template.yaml circular. It reads the SDK's
/// from what Lambda sets, and the enrolment client's name. Cognito waits 5 s for it, so its one
/// call gets 1.5 s and two attempts; beyond that the token loses the scope.
pub async fn run_pre_token() -> Result<(), Error> {
    use aws_sdk_cognitoidentityprovider::config::{
        Builder, retry::RetryConfig, timeout::TimeoutConfig,
    };
    amanar_http::telemetry::init(true);
    let config = Builder::from(&amanar_app::lambda_sdk_config())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(1500))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .build();
    let trigger = std::sync::Arc::new(amanar_cognito::pre_token::PreToken::new(
        aws_sdk_cognitoidentityprovider::Client::from_conf(config),
        std::env::var(amanar_cognito::pre_token::ENROLMENT_CLIENT_NAME).ok(),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let trigger = trigger.clone();
        async move { Ok::<_, Error>(trigger.answer(event.payload).await) }
    }))
    .await
}

/// The housekeeping schedule (EventBridge).
pub async fn run_housekeeping() -> Result<(), Error> {
    let housekeeping = std::sync::Arc::new(amanar_app::jobs::Housekeeping::new(cold_start()?));
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<serde_json::Value>| {
        let housekeeping = housekeeping.clone();
        async move {
            housekeeping.run().await?;
            Ok::<_, Error>(serde_json::json!({ "ok": true }))
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_gateways_source_ip_becomes_the_client_address() {
        use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
        use lambda_http::request::RequestContext;
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("203.0.113.7".into());
        let mut request = axum::extract::Request::new(axum::body::Body::empty());
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(context));
        // A header a caller writes is not where the address comes from.
        request
            .headers_mut()
            .insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
        let request = with_client_addr(request).await;
        assert_eq!(
            request.extensions().get::<amanar_http::ClientAddr>(),
            Some(&amanar_http::ClientAddr("203.0.113.7".parse().unwrap()))
        );
    }

    #[test]
    fn s3_event_keys_are_url_decoded() {
        assert_eq!(decode_key("quarantine/upl_1"), "quarantine/upl_1");
        assert_eq!(decode_key("a+b%2Fc%3D"), "a b/c=");
        assert_eq!(decode_key("trailing%2"), "trailing%2");
        assert_eq!(decode_key("%é"), "%é");
    }
}
