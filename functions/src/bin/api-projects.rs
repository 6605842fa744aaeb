//! Lambda: HTTP function `api-projects`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_marketplace::api::PROJECTS, env!("CARGO_BIN_NAME")).await
}
