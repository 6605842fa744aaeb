//! Lambda: HTTP function `api-admin-users`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_accounts::ADMIN_USERS, env!("CARGO_BIN_NAME")).await
}
