//! Lambda: HTTP function `api-health`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_platform::health::FUNCTION, env!("CARGO_BIN_NAME")).await
}
