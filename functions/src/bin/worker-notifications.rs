//! Lambda: consumer of the `notifications` queue (in-app notifications and email).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_sqs_worker(amanar_core::QueueName::Notifications).await
}
