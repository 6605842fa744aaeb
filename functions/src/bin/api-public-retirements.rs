//! Lambda: HTTP function `api-public-retirements` (public retirement records and certificates).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_orders::api_retirements::PUBLIC_RETIREMENTS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
