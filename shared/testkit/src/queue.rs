//! Queue conformance: the behaviour every Queue adapter must show, run unchanged against the embedded
//! queue and against SQS (through moto). Each case gets fresh, empty queues.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use amanar_core::queue::{self, JobError, JobHandler, Queue, QueueName, Received};
use async_trait::async_trait;

const NO_WAIT: Duration = Duration::ZERO;
const HIDE: Duration = Duration::from_secs(30);

async fn receive_one(
    queue: &dyn Queue,
    name: QueueName,
    visibility: Duration,
    wait: Duration,
) -> Option<Received> {
    let mut got = queue
        .receive(name, 1, visibility, wait)
        .await
        .expect("receive");
    assert!(got.len() <= 1);
    got.pop()
}

pub async fn a_sent_message_is_received_once_and_gone_after_delete(queue: Arc<dyn Queue>) {
    let id = queue
        .send(QueueName::Jobs, r#"{"type":"canary.v1","n":1}"#, NO_WAIT)
        .await
        .unwrap();
    let got = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(2))
        .await
        .expect("a message");
    assert_eq!(
        (got.id.as_str(), got.body.as_str(), got.receive_count),
        (id.as_str(), r#"{"type":"canary.v1","n":1}"#, 1)
    );
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, NO_WAIT)
            .await
            .is_none(),
        "hidden while being processed"
    );
    queue.delete(QueueName::Jobs, &got.receipt).await.unwrap();
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(1))
            .await
            .is_none()
    );
}

pub async fn an_unfinished_message_comes_back_after_its_visibility_timeout(queue: Arc<dyn Queue>) {
    queue.send(QueueName::Jobs, "work", NO_WAIT).await.unwrap();
    let first = receive_one(
        &*queue,
        QueueName::Jobs,
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, NO_WAIT)
            .await
            .is_none()
    );
    let again = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(4))
        .await
        .expect("redelivered");
    assert_eq!((again.id, again.receive_count), (first.id, 2));
}

pub async fn a_delayed_message_stays_hidden_until_its_delay_ends(queue: Arc<dyn Queue>) {
    let started = Instant::now();
    queue
        .send(QueueName::Jobs, "later", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_millis(500))
            .await
            .is_none()
    );
    let got = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(5))
        .await
        .expect("delivered after the delay");
    assert_eq!(got.body, "later");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "delivered after {:?}",
        started.elapsed()
    );
}

pub async fn changing_visibility_to_zero_makes_a_message_available_again(queue: Arc<dyn Queue>) {
    queue
        .send(QueueName::Jobs, "retry me", NO_WAIT)
        .await
        .unwrap();
    let got = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(2))
        .await
        .unwrap();
    queue
        .change_visibility(QueueName::Jobs, &got.receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(2))
        .await
        .expect("visible again");
    assert_eq!(again.receive_count, 2);
}

pub async fn a_message_failing_too_often_moves_to_the_dead_letter_queue(queue: Arc<dyn Queue>) {
    queue
        .send(QueueName::Jobs, "poison", NO_WAIT)
        .await
        .unwrap();
    for attempt in 1..=QueueName::Jobs.max_receive_count() {
        let got = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(2))
            .await
            .expect("delivered");
        assert_eq!(got.receive_count, attempt);
        queue
            .change_visibility(QueueName::Jobs, &got.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_millis(500))
            .await
            .is_none(),
        "no longer delivered"
    );
    let dead = receive_one(&*queue, QueueName::JobsDlq, HIDE, Duration::from_secs(2))
        .await
        .expect("in the dead-letter queue");
    assert_eq!(dead.body, "poison");
}

pub async fn a_receive_returns_at_most_the_requested_number_of_messages(queue: Arc<dyn Queue>) {
    for i in 0..15 {
        queue
            .send(QueueName::Jobs, &format!("m{i}"), NO_WAIT)
            .await
            .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 15 && Instant::now() < deadline {
        let batch = queue
            .receive(QueueName::Jobs, 10, HIDE, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(batch.len() <= 10);
        for message in batch {
            assert!(
                seen.insert(message.body),
                "no message is delivered twice while hidden"
            );
        }
    }
    assert_eq!(seen.len(), 15);
    assert!(
        queue
            .receive(QueueName::Jobs, 11, HIDE, NO_WAIT)
            .await
            .is_err(),
        "more than ten is refused"
    );
}

pub async fn a_waiting_receive_returns_as_soon_as_a_message_arrives(queue: Arc<dyn Queue>) {
    let sender = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender
            .send(QueueName::Jobs, "arrived", NO_WAIT)
            .await
            .unwrap();
    });
    let started = Instant::now();
    let got = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(5))
        .await
        .expect("message");
    assert_eq!(got.body, "arrived");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

/// Succeeds for bodies starting with "ok", asks for a retry otherwise.
struct Picky(AtomicUsize);

#[async_trait]
impl JobHandler for Picky {
    async fn handle(&self, message: &Received) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        if message.body.starts_with("ok") {
            Ok(())
        } else {
            Err(JobError::Retry("not yet".into()))
        }
    }
}

pub async fn a_batch_deletes_what_succeeded_and_retries_what_failed(queue: Arc<dyn Queue>) {
    for body in ["ok-1", "fail-1", "ok-2"] {
        queue.send(QueueName::Jobs, body, NO_WAIT).await.unwrap();
    }
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while batch.len() < 3 && Instant::now() < deadline {
        batch.extend(
            queue
                .receive(QueueName::Jobs, 10, HIDE, Duration::from_secs(1))
                .await
                .unwrap(),
        );
    }
    let failed_id = batch
        .iter()
        .find(|m| m.body == "fail-1")
        .unwrap()
        .id
        .clone();
    let handler = Picky(AtomicUsize::new(0));
    let outcome = queue::process_batch(
        &*queue,
        QueueName::Jobs,
        &handler,
        batch,
        Duration::from_secs(1),
        queue::Completion::Delete,
    )
    .await;
    assert_eq!(outcome.failed, vec![failed_id]);
    let retried = receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_secs(5))
        .await
        .expect("the failed one comes back");
    assert_eq!(
        (retried.body.as_str(), retried.receive_count),
        ("fail-1", 2)
    );
    assert!(
        receive_one(&*queue, QueueName::Jobs, HIDE, Duration::from_millis(1500))
            .await
            .is_none(),
        "successes were deleted"
    );
}

/// Declares one `#[tokio::test]` per queue conformance case. `$queue` is an async expression giving a
/// fresh `Arc<dyn Queue>` whose queues are empty.
#[macro_export]
macro_rules! queue_conformance_tests {
    ($queue:expr) => {
        $crate::queue_conformance_tests!(@cases $queue;
            a_sent_message_is_received_once_and_gone_after_delete,
            an_unfinished_message_comes_back_after_its_visibility_timeout,
            a_delayed_message_stays_hidden_until_its_delay_ends,
            changing_visibility_to_zero_makes_a_message_available_again,
            a_message_failing_too_often_moves_to_the_dead_letter_queue,
            a_receive_returns_at_most_the_requested_number_of_messages,
            a_waiting_receive_returns_as_soon_as_a_message_arrives,
            a_batch_deletes_what_succeeded_and_retries_what_failed
        );
    };
    (@cases $queue:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let queue: std::sync::Arc<dyn amanar_core::queue::Queue> = $queue.await;
                $crate::queue::$case(queue).await;
            }
        )*
    };
}
