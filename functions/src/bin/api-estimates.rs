//! Lambda: HTTP function `api-estimates`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounting::api::ESTIMATES, env!("CARGO_BIN_NAME")).await
}
