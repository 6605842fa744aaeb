//! Lambda: HTTP function `api-auth`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounts::AUTH, env!("CARGO_BIN_NAME")).await
}
