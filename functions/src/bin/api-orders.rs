//! Lambda: HTTP function `api-orders`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_orders::api::ORDERS, env!("CARGO_BIN_NAME")).await
}
