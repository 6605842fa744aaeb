//! A closed-loop HTTP load generator: `load URL CONNECTIONS SECONDS [BODY.json]`. Each connection sends
//! requests back to back over keep-alive for the duration (bounded in time; loopback only): GETs, or
//! POSTs of the JSON body file when one is given. `LOAD_HEADER="name: value"` adds a header to every
//! request (a bearer token). Prints one JSON line.

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: load URL CONNECTIONS SECONDS");
    assert!(
        url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost"),
        "load only targets loopback"
    );
    let connections: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(32);
    let seconds: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(10);
    let body: Option<bytes::Bytes> = args.next().map(|path| {
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into()
    });
    let extra_header: Option<(String, String)> = std::env::var("LOAD_HEADER").ok().map(|h| {
        let (name, value) = h.split_once(':').expect("LOAD_HEADER is name: value");
        (name.trim().to_owned(), value.trim().to_owned())
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.clone();
        let body = body.clone();
        let extra_header = extra_header.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let request = match &body {
                    Some(body) => client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                    None => client.get(&url),
                };
                let request = match &extra_header {
                    Some((name, value)) => request.header(name, value),
                    None => request,
                };
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, failed) = task.await.unwrap();
        all.extend(latencies);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let report = serde_json::json!({
        "url": url,
        "connections": connections,
        "seconds": elapsed,
        "requests": all.len(),
        "errors": errors,
        "rps": (all.len() as f64 / elapsed).round(),
        "p50_us": amanar_bench::quantile(&all, 0.50),
        "p99_us": amanar_bench::quantile(&all, 0.99),
    });
    println!("{report}");
}
