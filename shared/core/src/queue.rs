//! The Queue port: at-least-once message queues with visibility timeouts, delays and dead letters,
//! plus the one batch-processing routine every consumer (Lambda or local poller) goes through.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// The product's queues. Each has a dead-letter queue that receives a message after
/// [`QueueName::max_receive_count`] failed deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    /// Background jobs: canaries, imports, exports, reports.
    Jobs,
    /// Dead letters of `Jobs`.
    JobsDlq,
    /// Object-created events of the uploads bucket (only the local runtime queues these; in AWS,
    /// S3 invokes the verifier directly and retries it itself).
    Uploads,
    /// Dead letters of `Uploads`.
    UploadsDlq,
    /// Confirmed payments, from the payment webhook to the purchase worker (allocation).
    Purchases,
    /// Dead letters of `Purchases`.
    PurchasesDlq,
    /// Retirements to carry out, from the retirements API and the purchase worker to the
    /// retirement worker (ledger, public record, certificate).
    Retirements,
    /// Dead letters of `Retirements`.
    RetirementsDlq,
    /// Notifications to deliver (in-app and email), from the workers and the marketplace to the
    /// notifications worker.
    Notifications,
    /// Dead letters of `Notifications`.
    NotificationsDlq,
}

impl QueueName {
    pub const ALL: [QueueName; 10] = [
        QueueName::Jobs,
        QueueName::JobsDlq,
        QueueName::Uploads,
        QueueName::UploadsDlq,
        QueueName::Purchases,
        QueueName::PurchasesDlq,
        QueueName::Retirements,
        QueueName::RetirementsDlq,
        QueueName::Notifications,
        QueueName::NotificationsDlq,
    ];

    /// The queue whose [`QueueName::as_str`] is `name`, if any.
    pub fn named(name: &str) -> Option<QueueName> {
        QueueName::ALL.into_iter().find(|q| q.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Jobs => "jobs",
            QueueName::JobsDlq => "jobs-dlq",
            QueueName::Uploads => "uploads",
            QueueName::UploadsDlq => "uploads-dlq",
            QueueName::Purchases => "purchases",
            QueueName::PurchasesDlq => "purchases-dlq",
            QueueName::Retirements => "retirements",
            QueueName::RetirementsDlq => "retirements-dlq",
            QueueName::Notifications => "notifications",
            QueueName::NotificationsDlq => "notifications-dlq",
        }
    }

    /// Where a message goes after too many failed deliveries; `None` for dead-letter queues.
    pub fn dead_letter_queue(self) -> Option<QueueName> {
        match self {
            QueueName::Jobs => Some(QueueName::JobsDlq),
            QueueName::Uploads => Some(QueueName::UploadsDlq),
            QueueName::Purchases => Some(QueueName::PurchasesDlq),
            QueueName::Retirements => Some(QueueName::RetirementsDlq),
            QueueName::Notifications => Some(QueueName::NotificationsDlq),
            QueueName::JobsDlq
            | QueueName::UploadsDlq
            | QueueName::PurchasesDlq
            | QueueName::RetirementsDlq
            | QueueName::NotificationsDlq => None,
        }
    }

    /// How many messages of one batch its consumer handles at once (at least 1). The pipeline's
    /// queues carry small, independent, idempotent messages (one payment, retirement or
    /// notification each; two copies of one event settle through conditional writes), so a batch
    /// runs concurrently, which also lets the embedded store commit their writes together. Jobs
    /// (canaries, imports, exports, reports) and upload checks are heavy in memory and CPU: one at
    /// a time.
    pub fn batch_concurrency(self) -> usize {
        match self {
            QueueName::Purchases | QueueName::Retirements | QueueName::Notifications => 10,
            _ => 1,
        }
    }

    /// Deliveries after which a message is moved to the dead-letter queue (SQS `maxReceiveCount`).
    pub fn max_receive_count(self) -> u32 {
        5
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message received from a queue. It stays invisible to other consumers until its visibility
/// timeout ends, and comes back unless deleted with its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    pub body: String,
    /// Handle for [`Queue::delete`] and [`Queue::change_visibility`] of this delivery.
    pub receipt: String,
    /// How many times the message has been delivered, this delivery included.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QueueError {
    /// The receipt belongs to an earlier delivery or the message is gone.
    #[error("unknown or stale receipt")]
    StaleReceipt,
    #[error("invalid queue request: {0}")]
    Invalid(String),
    #[error("queue backend failed: {0}")]
    Backend(String),
}

/// Longest delay a message may be sent with (as in SQS).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Largest message body (as in SQS).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most messages one receive returns (as in SQS).
pub const MAX_RECEIVE: usize = 10;

#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Sends a message that becomes visible after `delay` (at most [`MAX_DELAY`]). Returns its id.
    async fn send(
        &self,
        queue: QueueName,
        body: &str,
        delay: Duration,
    ) -> Result<String, QueueError>;

    /// Receives up to `max` visible messages (at most [`MAX_RECEIVE`]), hiding each for `visibility`.
    /// Waits up to `wait` for one to arrive when none is visible. Messages delivered more than the
    /// queue's maximum are moved to its dead-letter queue instead of being returned.
    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError>;

    /// Deletes a delivered message: the consumer is done with it.
    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError>;

    /// Makes a delivered message visible again after `visibility` (retry with backoff).
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError>;
}

/// Checks what both adapters refuse before sending.
pub fn validate_send(body: &str, delay: Duration) -> Result<(), QueueError> {
    if body.is_empty() {
        return Err(QueueError::Invalid("a message body cannot be empty".into()));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(QueueError::Invalid(format!(
            "a message body holds at most {MAX_BODY_BYTES} bytes"
        )));
    }
    if delay > MAX_DELAY {
        return Err(QueueError::Invalid(
            "a message can be delayed by at most 15 minutes".into(),
        ));
    }
    Ok(())
}

/// Checks the batch size of a receive.
pub fn validate_receive(max: usize) -> Result<(), QueueError> {
    if max == 0 || max > MAX_RECEIVE {
        return Err(QueueError::Invalid(format!(
            "receive takes 1 to {MAX_RECEIVE} messages"
        )));
    }
    Ok(())
}

/// What a consumer decides about one message.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a dependency failed, a race was lost).
    #[error("retry: {0}")]
    Retry(String),
    /// Can never succeed (malformed or unknown message): goes straight towards the dead-letter queue.
    #[error("poison: {0}")]
    Poison(String),
}

/// A consumer of one queue's messages. Handlers must be idempotent: queues deliver at least once.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, message: &Received) -> Result<(), JobError>;
}

/// Backoff before the next delivery of a message that failed `receive_count` times:
/// `base * 2^(n-1)`, capped at 15 minutes.
pub fn retry_backoff(base: Duration, receive_count: u32) -> Duration {
    let factor = 1u32 << receive_count.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_DELAY)
}

/// Outcome of a batch: the ids of the messages that failed (Lambda's partial batch response).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub failed: Vec<String>,
}

/// Who deletes the messages a batch processed successfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The poller does (local runtime).
    Delete,
    /// The Lambda SQS event source does, for every message not reported as failed.
    ReportToLambda,
}

/// Processes a batch of deliveries, up to [`QueueName::batch_concurrency`] at once: completes each
/// message that succeeded, schedules the others for a retry with backoff, and sends poison
/// messages towards the dead-letter queue by making them visible again at once until the queue's
/// receive limit moves them. Returns the failed messages' ids in the order they finished. Used by
/// both the Lambda SQS handler and the local poller, so retries behave the same on both faces.
pub async fn process_batch(
    queue: &dyn Queue,
    name: QueueName,
    handler: &dyn JobHandler,
    messages: Vec<Received>,
    backoff_base: Duration,
    completion: Completion,
) -> BatchOutcome {
    use futures_util::StreamExt as _;
    let failed = futures_util::stream::iter(messages)
        .map(|message| process_one(queue, name, handler, message, backoff_base, completion))
        .buffer_unordered(name.batch_concurrency())
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    BatchOutcome { failed }
}

/// One message of [`process_batch`]; returns its id if it failed.
async fn process_one(
    queue: &dyn Queue,
    name: QueueName,
    handler: &dyn JobHandler,
    message: Received,
    backoff_base: Duration,
    completion: Completion,
) -> Option<String> {
    let span = tracing::info_span!("message", queue = %name, message_id = %message.id, receive_count = message.receive_count);
    match handler.handle(&message).instrument(span).await {
        Ok(()) if completion == Completion::ReportToLambda => None,
        Ok(()) => {
            if let Err(error) = queue.delete(name, &message.receipt).await {
                // Not deleting only means another (idempotent) delivery later.
                tracing::warn!(queue = %name, message_id = %message.id, %error, "could not delete a processed message");
            }
            None
        }
        Err(error) => {
            let delay = match &error {
                JobError::Retry(_) => retry_backoff(backoff_base, message.receive_count),
                JobError::Poison(_) => Duration::ZERO,
            };
            tracing::warn!(queue = %name, message_id = %message.id, receive_count = message.receive_count, %error, "message failed");
            if let Err(error) = queue.change_visibility(name, &message.receipt, delay).await {
                tracing::warn!(queue = %name, message_id = %message.id, %error, "could not reschedule a failed message");
            }
            Some(message.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_delivery_and_is_capped() {
        let base = Duration::from_secs(2);
        assert_eq!(retry_backoff(base, 1), Duration::from_secs(2));
        assert_eq!(retry_backoff(base, 2), Duration::from_secs(4));
        assert_eq!(retry_backoff(base, 4), Duration::from_secs(16));
        assert_eq!(retry_backoff(base, 40), MAX_DELAY);
    }

    /// A queue that records what the batch did with each delivery.
    #[derive(Default)]
    struct Recorder {
        deleted: std::sync::Mutex<Vec<String>>,
        rescheduled: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Queue for Recorder {
        async fn send(&self, _: QueueName, _: &str, _: Duration) -> Result<String, QueueError> {
            unreachable!("a batch never sends")
        }
        async fn receive(
            &self,
            _: QueueName,
            _: usize,
            _: Duration,
            _: Duration,
        ) -> Result<Vec<Received>, QueueError> {
            unreachable!("a batch never receives")
        }
        async fn delete(&self, _: QueueName, receipt: &str) -> Result<(), QueueError> {
            self.deleted.lock().unwrap().push(receipt.into());
            Ok(())
        }
        async fn change_visibility(
            &self,
            _: QueueName,
            receipt: &str,
            _: Duration,
        ) -> Result<(), QueueError> {
            self.rescheduled.lock().unwrap().push(receipt.into());
            Ok(())
        }
    }

    /// Every handler waits until all ten of the batch have started: handled one after the
    /// other, the first would wait forever.
    struct AllAtOnce(tokio::sync::Barrier);

    #[async_trait]
    impl JobHandler for AllAtOnce {
        async fn handle(&self, message: &Received) -> Result<(), JobError> {
            self.0.wait().await;
            match message.body.as_str() {
                "retry" => Err(JobError::Retry("later".into())),
                _ => Ok(()),
            }
        }
    }

    fn deliveries(bodies: &[&str]) -> Vec<Received> {
        bodies
            .iter()
            .enumerate()
            .map(|(n, body)| Received {
                id: format!("m{n}"),
                body: (*body).into(),
                receipt: format!("r{n}"),
                receive_count: 1,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_pipeline_batch_runs_concurrently_and_reports_exactly_its_failures() {
        let name = QueueName::Purchases;
        assert_eq!(name.batch_concurrency(), 10);
        let queue = Recorder::default();
        let handler = AllAtOnce(tokio::sync::Barrier::new(10));
        let mut bodies = vec!["ok"; 10];
        bodies[3] = "retry";
        bodies[7] = "retry";
        let run = process_batch(
            &queue,
            name,
            &handler,
            deliveries(&bodies),
            Duration::from_secs(1),
            Completion::Delete,
        );
        let outcome = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("the batch's messages ran one after the other");
        let mut failed = outcome.failed;
        failed.sort();
        assert_eq!(failed, ["m3", "m7"]);
        let mut deleted = queue.deleted.lock().unwrap().clone();
        deleted.sort();
        assert_eq!(deleted, ["r0", "r1", "r2", "r4", "r5", "r6", "r8", "r9"]);
        let mut rescheduled = queue.rescheduled.lock().unwrap().clone();
        rescheduled.sort();
        assert_eq!(rescheduled, ["r3", "r7"]);
    }

    /// Counts the handlers running at once.
    #[derive(Default)]
    struct InFlight {
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl JobHandler for InFlight {
        async fn handle(&self, _: &Received) -> Result<(), JobError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.now.fetch_sub(1, SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_job_batch_runs_one_message_at_a_time_and_leaves_deleting_to_lambda() {
        let name = QueueName::Jobs;
        let queue = Recorder::default();
        let handler = InFlight::default();
        let outcome = process_batch(
            &queue,
            name,
            &handler,
            deliveries(&["a", "b", "c", "d"]),
            Duration::from_secs(1),
            Completion::ReportToLambda,
        )
        .await;
        assert!(outcome.failed.is_empty());
        assert_eq!(handler.most.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            queue.deleted.lock().unwrap().is_empty(),
            "Lambda deletes, not the batch"
        );
    }

    #[test]
    fn oversized_or_overdelayed_messages_are_refused() {
        assert!(validate_send("x", Duration::ZERO).is_ok());
        assert!(validate_send("", Duration::ZERO).is_err());
        assert!(validate_send(&"x".repeat(MAX_BODY_BYTES + 1), Duration::ZERO).is_err());
        assert!(validate_send("x", MAX_DELAY + Duration::from_secs(1)).is_err());
    }
}
