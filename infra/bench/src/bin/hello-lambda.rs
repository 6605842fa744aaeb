//! Baseline: a hello-world lambda_http function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(
        |_request: lambda_http::Request| async {
            Ok::<_, lambda_http::Error>(lambda_http::Response::new(lambda_http::Body::from(
                "hello",
            )))
        },
    ))
    .await
}
