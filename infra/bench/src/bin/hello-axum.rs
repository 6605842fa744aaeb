//! Baseline: a bare axum hello-world on the address given as the first argument.

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into());
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("hello-axum listening on http://{addr}");
    axum::serve(listener, app).await.unwrap();
}
