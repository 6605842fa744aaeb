//! Activity imports end to end against a running local runtime:
//! `import-load BASE_URL [ROWS] [RUNS]`.
//!
//! Signs a user up (through the local mailbox), creates an organisation, then imports the benchmark
//! activity file (see `workload.rs`) RUNS times, each for another year: declare, PUT the file to the
//! signed URL, and poll the import every 10 ms until it is completed. The time runs from the start
//! of the PUT to the first poll that sees `completed`, so it covers the upload, the upload check, the
//! queue, the calculation, the lines file and the footprint transaction. The baseline, measured in
//! the same run, is the same file calculated in this process (`activity_csv::calculate`). Prints one
//! JSON line.

use std::time::{Duration, Instant};

use amanar_accounting::Library;
use amanar_accounting::activity_csv;
use amanar_bench::workload::activity_file;
use amanar_journeys::{Api, As};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .expect("usage: import-load BASE_URL [ROWS] [RUNS]");
    let rows: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(350_000);
    let runs: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    let file = activity_file(rows);

    let started = Instant::now();
    let computed = activity_csv::calculate(Library::shipped(), None, &file, |_, _| {})
        .expect("the benchmark file is valid");
    let in_process = started.elapsed();
    assert_eq!(computed.line_count, rows as u64);

    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };
    let email = format!("import-bench-{}@example.com", std::process::id());
    let (_, token) = api.user(&email, "business").await;
    let org_id = api.org(&token, "Bench Ltd").await;
    let http = &api.http;

    let mut samples = Vec::new();
    let mut uploads = Vec::new();
    for run in 0..runs {
        let year = 2000 + run;
        let declared = api
            .post(
                &format!("/v1/orgs/{org_id}/activity-imports"),
                As::Bearer(&token),
                json!({"filename": "bench.csv", "size": file.len(),
                       "period": {"start": format!("{year}-01-01"), "end": format!("{year}-12-31")}}),
            )
            .await;
        assert_eq!(declared.status, 202, "{}", declared.body);
        let declared = declared.body;
        let import_id = declared["id"].as_str().unwrap();
        let upload = &declared["upload"];
        let mut put = http.put(upload["url"].as_str().unwrap()).body(file.clone());
        for (name, value) in upload["headers"].as_object().unwrap() {
            put = put.header(name.as_str(), value.as_str().unwrap());
        }
        let started = Instant::now();
        let response = put.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        uploads.push(started.elapsed());
        loop {
            let import: Value = http
                .get(format!(
                    "{base}/v1/orgs/{org_id}/activity-imports/{import_id}"
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match import["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "rejected") => panic!("the import ended {import}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    uploads.sort();
    let best = samples[0].as_secs_f64();
    let median = samples[samples.len() / 2].as_secs_f64();
    let report = json!({
        "rows": rows,
        "file_bytes": file.len(),
        "runs": runs,
        "end_to_end_ms_best": (best * 1000.0).round(),
        "end_to_end_ms_p50": (median * 1000.0).round(),
        "upload_put_ms_p50": uploads[uploads.len() / 2].as_millis(),
        "end_to_end_rows_per_s_p50": (rows as f64 / median).round(),
        "end_to_end_rows_per_s_best": (rows as f64 / best).round(),
        "baseline_in_process_rows_per_s": (rows as f64 / in_process.as_secs_f64()).round(),
        "ratio_to_baseline_p50": (in_process.as_secs_f64() / median * 1000.0).round() / 1000.0,
    });
    println!("{report}");
}
