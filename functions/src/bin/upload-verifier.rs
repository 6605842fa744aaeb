//! Lambda: checks files uploaded to the uploads bucket (S3 object-created events).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amanar_functions::run_upload_verifier().await
}
