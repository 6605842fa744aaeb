//! Ledger writes per second in-process, on the embedded table: `ledger [OPS] [CONCURRENCY]`.
//!
//! Measures, on one fresh database each:
//! - the baseline: one conditional put per operation (`NotExists`), the floor for any write that
//!   guards an invariant;
//! - issuances: `Ledger::issue` of native blocks (head read, overlap query, one five-operation
//!   write);
//! - listings: transfers of 10 credits from a developer's inventory to listings, one issuance
//!   (index read, movement-record read, one write that splits a block);
//! - contended reservations: CONCURRENCY tasks reserving 1 credit each from one listing's single
//!   block, where each round has one winner.
//!
//! Prints one JSON line with each rate and its ratio to the baseline.

use std::sync::Arc;
use std::time::Instant;

use amanar_core::table::{Condition, Item, Table, WriteOp};
use amanar_marketplace::ledger::{Account, Ledger, NewIssuance, Transfer};
use amanar_marketplace::serial::{self, Standard, Vintage};
use chrono::Utc;
use serde_json::json;

fn table() -> (Arc<dyn Table>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = amanar_embedded::EmbeddedStore::open(dir.path()).expect("the embedded store opens");
    (Arc::new(store.table), dir)
}

fn native(id: &str, quantity: u64) -> NewIssuance {
    NewIssuance {
        id: id.to_owned(),
        project_id: "prj_bench".into(),
        serial: serial::parse(Standard::Native, &format!("AMC-{id}-1-{quantity}"))
            .expect("a serial"),
        vintage: Vintage::Year(2025),
        buffer: 0,
        inventory_owner: "ORG#org_bench".into(),
        issued_by: "user:usr_bench".into(),
        issued_at: Utc::now(),
    }
}

fn per_second(ops: usize, started: Instant) -> f64 {
    (ops as f64 / started.elapsed().as_secs_f64()).round()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let ops: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(2000);
    let concurrency: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(32);

    let (baseline_table, _a) = table();
    let started = Instant::now();
    for i in 0..ops {
        let mut item = Item::new();
        item.insert("pk".into(), json!(format!("BENCH#{i}")));
        item.insert("sk".into(), json!("ITEM"));
        baseline_table
            .write(vec![WriteOp::put(item).when(Condition::NotExists)])
            .await
            .expect("a put");
    }
    let baseline = per_second(ops, started);

    let (issue_table, _b) = table();
    let ledger = Ledger::new(issue_table);
    let started = Instant::now();
    for i in 0..ops {
        ledger
            .issue(native(&format!("iss_{i}"), 1000))
            .await
            .expect("an issuance");
    }
    let issuances = per_second(ops, started);

    let (list_table, _c) = table();
    let ledger = Ledger::new(list_table);
    ledger
        .issue(native("iss_list", 10 * ops as u64))
        .await
        .expect("an issuance");
    let inventory = Account::Inventory("ORG#org_bench".into());
    let started = Instant::now();
    for i in 0..ops {
        let transfer = Transfer {
            id: format!("list:{i}"),
            from: inventory.clone(),
            to: Account::Listing(format!("lst_{i}")),
            quantity: 10,
            issuance: "iss_list".into(),
        };
        ledger.transfer(&transfer, &[]).await.expect("a listing");
    }
    let listings = per_second(ops, started);

    let (hot_table, _d) = table();
    let ledger = Ledger::new(hot_table);
    let reservations = concurrency * 8;
    ledger
        .issue(native("iss_hot", reservations as u64))
        .await
        .expect("an issuance");
    let listing = Account::Listing("lst_hot".into());
    let to_listing = Transfer {
        id: "list:hot".into(),
        from: inventory.clone(),
        to: listing.clone(),
        quantity: reservations as u64,
        issuance: "iss_hot".into(),
    };
    ledger
        .transfer(&to_listing, &[])
        .await
        .expect("the listing");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (ledger, listing) = (ledger.clone(), listing.clone());
        tasks.spawn(async move {
            for n in 0..8 {
                let reserve = Transfer {
                    id: format!("reserve:{worker}:{n}"),
                    from: listing.clone(),
                    to: Account::Reserved(format!("ord_{worker}_{n}")),
                    quantity: 1,
                    issuance: "iss_hot".into(),
                };
                ledger.transfer(&reserve, &[]).await.expect("a reservation");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a worker");
    }
    let contended = per_second(reservations, started);
    assert_eq!(ledger.balance(&listing, Some("iss_hot")).await.unwrap(), 0);

    let ratio = |rate: f64| (rate / baseline * 1000.0).round() / 1000.0;
    let report = json!({
        "ops": ops,
        "concurrency": concurrency,
        "baseline_conditional_puts_per_s": baseline,
        "issuances_per_s": issuances,
        "issuance_ratio": ratio(issuances),
        "listing_transfers_per_s": listings,
        "listing_ratio": ratio(listings),
        "contended_reservations_per_s": contended,
        "contended_ratio": ratio(contended),
    });
    println!("{report}");
}
