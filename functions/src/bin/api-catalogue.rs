//! Lambda: HTTP function `api-catalogue`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_marketplace::api_catalogue::CATALOGUE,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
