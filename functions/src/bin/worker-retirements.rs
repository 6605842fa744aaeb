//! Lambda: consumer of the `retirements` queue (the retirement worker).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_sqs_worker(amanar_core::QueueName::Retirements).await
}
