//! Lambda: the user pool's pre-token-generation trigger (takes Cognito's user-facing scope out of
//! users' access tokens).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_pre_token().await
}
