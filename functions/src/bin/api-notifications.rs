//! Lambda: HTTP function `api-notifications`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(
        amanar_notifications::api::NOTIFICATIONS,
        env!("CARGO_BIN_NAME"),
    )
    .await
}
