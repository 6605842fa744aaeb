//! The Queue conformance suite against SQS, served by moto server (started by infra/test.sh).

use std::sync::Arc;

use amanar_core::queue::Queue;
use amanar_sqs::SqsQueue;
use amanar_testkit::{emulator_sdk_config, namespace};

/// Fresh queues (with their dead-letter queues) for each case.
async fn fresh_queue() -> Arc<dyn Queue> {
    let client = aws_sdk_sqs::Client::new(&emulator_sdk_config().await);
    let urls = SqsQueue::create_queues(&client, &format!("{}-", namespace()))
        .await
        .expect("create queues on the emulator");
    Arc::new(SqsQueue::new(client, urls))
}

amanar_testkit::queue_conformance_tests!(fresh_queue());
