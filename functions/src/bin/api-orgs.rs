//! Lambda: HTTP function `api-orgs`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounts::ORGS, env!("CARGO_BIN_NAME")).await
}
