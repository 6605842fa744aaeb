//! Lambda: HTTP function `api-estimates`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http("api-estimates").await
}
