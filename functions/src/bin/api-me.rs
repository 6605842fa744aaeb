//! Lambda: HTTP function `api-me`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounts::ME, env!("CARGO_BIN_NAME")).await
}
