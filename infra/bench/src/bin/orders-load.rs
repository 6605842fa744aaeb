//! Orders end to end through the local runtime: `orders-load [CONNECTIONS] [SECONDS]`.
//!
//! Starts a local runtime in this process (embedded store, local payment simulator), lists
//! `LISTINGS` large native issuances, and signs a buyer up. Then each connection, for SECONDS,
//! places a 1 t order (`POST /v1/orders` with an Idempotency-Key) and confirms its payment through
//! the simulator (`POST /_local/payments/{id}/confirm`, which signs a webhook event and sends it
//! through `POST /v1/webhooks/stripe`), back to back, without waiting for allocation. After the
//! run it waits for every order to complete. Figures:
//! - completed orders per second: orders / (first order placed .. last `completedAt`), so the
//!   purchase worker's allocation (ledger transfer into the holding, order completed, one
//!   transaction) is inside the time;
//! - confirmation to `completed`: the order's `completedAt` minus the moment the client sent the
//!   confirmation (one clock: same process), p50 / p99 / max.
//!
//! The baseline, measured in the same run against the same runtime and buyer: `POST
//! /v1/estimates` over the same number of connections for the same time. Prints one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amanar_journeys::{Api, Platform, vars};
use amanar_marketplace::fixtures;
use amanar_marketplace::money::Money;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Listings the buyers spread over (a seller's inventory is rarely one block).
const LISTINGS: usize = 8;
const TONNES_PER_LISTING: u64 = 1_000_000;

async fn seed(running: &amanar_local::Running) -> Vec<String> {
    let table = running.ports().table.clone();
    let fields = fixtures::forest("Bench forest", "KE");
    let project = fixtures::approved(&table, "prj_bench", "ORG#org_bench_seller", fields).await;
    let mut listings = Vec::new();
    for n in 0..LISTINGS {
        let price = Money::parse("12.50", "USD").expect("a price");
        let listing = fixtures::listed(
            &table,
            &project,
            &format!("iss_bench_{n}"),
            &format!("lst_bench_{n}"),
            TONNES_PER_LISTING,
            price,
        )
        .await;
        listings.push(listing.id);
    }
    listings
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(16);
    let seconds: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(10);
    let (running, _dir) = Platform::new()
        .set(vars::RATE_LIMIT_USER, "1000000000")
        .set(vars::MAX_UNPAID_ORDERS, "100000")
        .set("RUST_LOG", "warn")
        .start()
        .await;
    let listings = Arc::new(seed(&running).await);
    let api = Api::new(&running);
    let (_, token) = api.user("orders-bench@example.com", "individual").await;
    let base = api.base.clone();

    // Orders: place and confirm, back to back, per connection.
    let started = Instant::now();
    let wall_start = Utc::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (base, token, listings) = (base.clone(), token.clone(), listings.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let listing = &listings[connection % listings.len()];
            let mut placed: Vec<(String, DateTime<Utc>)> = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let order: Value = http
                    .post(format!("{base}/v1/orders"))
                    .bearer_auth(&token)
                    .header("idempotency-key", format!("bench-{connection}-{n}"))
                    .json(&json!({"listingId": listing, "quantity": 1}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let order_id = order["orderId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no order: {order}"))
                    .to_owned();
                let payment = order["payment"]["paymentId"].as_str().unwrap().to_owned();
                let confirmed_at = Utc::now();
                let confirmed = http
                    .post(format!("{base}/_local/payments/{payment}/confirm"))
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert!(confirmed.status().is_success(), "{}", confirmed.status());
                placed.push((order_id, confirmed_at));
            }
            placed
        }));
    }
    let mut placed = Vec::new();
    for task in tasks {
        placed.extend(task.await.unwrap());
    }
    let placing = started.elapsed();

    // Every order completes; its completedAt gives the latency and the end of the run.
    let http = reqwest::Client::new();
    let mut latencies_ms = Vec::with_capacity(placed.len());
    let mut last_completed = wall_start;
    for (order_id, confirmed_at) in &placed {
        let waited = Instant::now();
        loop {
            let order: Value = http
                .get(format!("{base}/v1/orders/{order_id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if order["status"] == "completed" {
                let completed: DateTime<Utc> =
                    order["completedAt"].as_str().unwrap().parse().unwrap();
                latencies_ms.push((completed - *confirmed_at).as_seconds_f64() * 1000.0);
                last_completed = last_completed.max(completed);
                break;
            }
            assert_eq!(order["status"], "pending_payment", "{order}");
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "not completed: {order}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let span = (last_completed - wall_start).as_seconds_f64();

    // The baseline: single estimates, same runtime, buyer and connections.
    let estimate = json!({"activityId": "electricity-grid", "region": "GB", "amount": "1000.5", "unit": "kWh"});
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (base, token, estimate) = (base.clone(), token.clone(), estimate.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut done = 0u64;
            while Instant::now() < deadline {
                let answer = http
                    .post(format!("{base}/v1/estimates"))
                    .bearer_auth(&token)
                    .json(&estimate)
                    .send()
                    .await
                    .unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
                done += 1;
            }
            done
        }));
    }
    let mut estimates = 0u64;
    for task in tasks {
        estimates += task.await.unwrap();
    }
    let estimates_per_s = estimates as f64 / started.elapsed().as_secs_f64();
    let orders_per_s = placed.len() as f64 / span;
    let report = json!({
        "connections": connections,
        "seconds": seconds,
        "listings": LISTINGS,
        "orders_completed": placed.len(),
        "placing_s": (placing.as_secs_f64() * 100.0).round() / 100.0,
        "completed_orders_per_s": orders_per_s.round(),
        "confirm_to_completed_ms_p50": percentile(&latencies_ms, 0.50),
        "confirm_to_completed_ms_p99": percentile(&latencies_ms, 0.99),
        "confirm_to_completed_ms_max": percentile(&latencies_ms, 1.0),
        "baseline_estimates_per_s": estimates_per_s.round(),
        "ratio_orders_to_estimates": (orders_per_s / estimates_per_s * 1000.0).round() / 1000.0,
    });
    println!("{report}");
    running.shutdown().await;
}
