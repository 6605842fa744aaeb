//! A closed-loop HTTP load generator: `load URL CONNECTIONS SECONDS [BODY.json]`. Each connection sends
//! requests back to back over keep-alive for the duration (bounded in time; loopback only): GETs, or
//! POSTs of the JSON body file when one is given. Prints one JSON line.

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
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.clone();
        let body = body.clone();
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
