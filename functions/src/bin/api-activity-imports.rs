//! Lambda: HTTP function `api-activity-imports`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http("api-activity-imports").await
}
