//! Lambda: HTTP function `api-retirements`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_orders::api_retirements::RETIREMENTS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
