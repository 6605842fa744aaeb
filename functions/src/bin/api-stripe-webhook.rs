//! Lambda: HTTP function `api-stripe-webhook`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_http(amanar_orders::api::STRIPE_WEBHOOK, env!("CARGO_BIN_NAME")).await
}
