//! Lambda: HTTP function `api-admin-users`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http("api-admin-users").await
}
