//! Lambda initialisation: `lambda-init BINARY RUNS [EVENT.json]`. Starts the binary RUNS times against
//! a stand-in Lambda Runtime API and reports the time from process start to its first request for
//! work, the first invocation's latency, and the peak resident memory (VmHWM) after it. Prints JSON.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amanar_testkit::lambda::RuntimeApi;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: lambda-init BINARY RUNS [EVENT.json]");
    let runs: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(20);
    let event: serde_json::Value = match args.next() {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        None => serde_json::from_str(include_str!("../../../../events/api-health.json")).unwrap(),
    };
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        let mut api = RuntimeApi::start().await;
        api.invoke(event.clone());
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&binary)
            .envs(api.env("bench"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the binary");
        api.outcome(Duration::from_secs(30))
            .await
            .expect("the function answers");
        let answered = started.elapsed();
        let first_poll = api.first_poll().expect("the function polled") - started;
        peaks.push(peak_rss_kib(child.id().unwrap()));
        child.kill().await.ok();
        inits.push(first_poll.as_micros() as u64);
        firsts.push((answered - first_poll).as_micros() as u64);
        totals.push(answered.as_micros() as u64);
    }
    inits.sort_unstable();
    firsts.sort_unstable();
    totals.sort_unstable();
    peaks.sort_unstable();
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    let report = serde_json::json!({
        "binary": binary,
        "runs": runs,
        "init_p50_us": amanar_bench::quantile(&inits, 0.5),
        "init_p90_us": amanar_bench::quantile(&inits, 0.9),
        "first_invocation_p50_us": amanar_bench::quantile(&firsts, 0.5),
        "spawn_to_response_p50_us": amanar_bench::quantile(&totals, 0.5),
        "peak_rss_p50_kib": amanar_bench::quantile(&peaks, 0.5),
        "size_bytes": size,
    });
    println!("{report}");
}
