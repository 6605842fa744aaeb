//! Lambda: HTTP function `api-credits`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_marketplace::api_credits::CREDITS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
