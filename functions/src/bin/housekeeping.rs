//! Lambda: the housekeeping schedule (EventBridge).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_housekeeping().await
}
