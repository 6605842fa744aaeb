//! Lambda: HTTP function `api-docs`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_app::routes::DOCS, env!("CARGO_BIN_NAME")).await
}
