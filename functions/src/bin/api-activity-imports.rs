//! Lambda: HTTP function `api-activity-imports`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_accounting::api_footprints::IMPORTS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
