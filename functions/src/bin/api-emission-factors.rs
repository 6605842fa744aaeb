//! Lambda: HTTP function `api-emission-factors`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounting::api::FACTORS, env!("CARGO_BIN_NAME")).await
}
