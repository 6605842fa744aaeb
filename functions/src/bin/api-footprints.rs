//! Lambda: HTTP function `api-footprints`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_accounting::api_footprints::FOOTPRINTS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
