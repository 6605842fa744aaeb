//! Lambda: consumer of the `jobs` queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_sqs_worker(amanar_core::QueueName::Jobs).await
}
