//! Lambda: consumer of the `purchases` queue (the purchase worker).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_sqs_worker(amanar_core::QueueName::Purchases).await
}
