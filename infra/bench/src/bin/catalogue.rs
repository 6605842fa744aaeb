//! The catalogue at scale: `catalogue DATA_DIR [PROJECTS]`.
//!
//! Fills an embedded data directory with PROJECTS approved projects (100 000 by default), one
//! active listing each, drawn from the demo catalogue's distribution (its standards, countries,
//! categories, types, protocols and prices, with vintages 2015 to 2025 and available tonnes
//! spread over three orders of magnitude). Listings are written as their records in the
//! catalogue feed without ledger blocks: the catalogue reads only the records. Then measures,
//! in-process:
//! - the index's cold load from the table (what a fresh search function does first);
//! - single-threaded search latency of the three-filter, text and facet queries the HTTP load
//!   uses (`infra/bench/catalogue.sh`).
//!
//! A data directory that already holds the catalogue is reused (the fill is skipped).
//! Prints one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amanar_core::clock::SystemClock;
use amanar_core::keys;
use amanar_core::table::{Condition, Table, WriteOp, items};
use amanar_marketplace::catalogue::{Catalogue, Search};
use amanar_marketplace::listings::{Listing, ListingStatus};
use amanar_marketplace::money::Money;
use amanar_marketplace::projects::{IssuanceType, Project, ProjectFields, Projects};
use amanar_marketplace::serial::{Standard, Vintage};
use chrono::Utc;
use serde_json::json;

/// xorshift64*: deterministic, so every run builds the same catalogue.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

async fn fill(table: &Arc<dyn Table>, count: usize) {
    let rows = amanar_marketplace::demo::rows().expect("the demo rows");
    let countries: Vec<String> = {
        let mut c: Vec<String> = rows.iter().map(|r| r.country.clone()).collect();
        c.sort();
        c.dedup();
        c
    };
    let projects = Projects::new(table.clone());
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let mut listings = Vec::new();
    let now = Utc::now();
    for i in 0..count {
        let row = &rows[random.below(rows.len() as u64) as usize];
        // Most projects keep their row's country; some move, so countries spread as types do.
        let country = if random.below(10) < 3 {
            countries[random.below(countries.len() as u64) as usize].clone()
        } else {
            row.country.clone()
        };
        let id = format!("prj_bench_{i:06}");
        let project = Project::approved_elsewhere(
            id.clone(),
            format!("ORG#org_bench_{}", i % 500),
            ProjectFields {
                name: format!("{} {i}", row.name),
                description: format!("Bench project after {} ({})", row.project, row.project_type),
                category: row.category.clone(),
                project_type: row.project_type.clone(),
                protocol: (!row.protocol.is_empty()).then(|| row.protocol.clone()),
                standard: row.standard,
                mechanism: row.mechanism,
                issuance_type: IssuanceType::ExPost,
                country,
                location: None,
                sdgs: vec![13],
                labels: Vec::new(),
                permanence_years: None,
                registry_project_id: Some(row.project.clone()),
                registry_url: None,
            },
            "system:bench".into(),
            now,
        );
        projects
            .import_approved(&project, "bench")
            .await
            .expect("a project");
        let base: f64 = row.price.parse().expect("a price");
        let price = base * (0.8 + random.below(400) as f64 / 1000.0);
        let available = 10u64.pow(2 + random.below(3) as u32) + random.below(1000);
        let listing = Listing {
            id: format!("lst_bench_{i:06}"),
            project_id: id,
            issuance_id: format!("iss_bench_{i:06}"),
            seller: project.owner.clone(),
            standard: row.standard,
            vintage: Vintage::Year(2015 + random.below(11) as i32),
            quantity: available,
            available,
            unit_price: Money::parse(&format!("{price:.2}"), "USD").expect("a price"),
            status: ListingStatus::Active,
            version: 1,
            revision: 1,
            created_by: "system:bench".into(),
            created_at: now,
            updated_at: now,
        };
        let mut item = items::with_key(&keys::listing(&listing.id), &listing).expect("an item");
        keys::listing_of_project(&listing.project_id, now, &listing.id).insert_into(&mut item);
        keys::catalogue_entry("LISTING", &listing.id, now).insert_into(&mut item);
        listings.push(WriteOp::put(item).when(Condition::NotExists));
        if listings.len() == 50 {
            table
                .write(std::mem::take(&mut listings))
                .await
                .expect("listings");
        }
        if i % 10_000 == 9_999 {
            eprintln!("{} projects written", i + 1);
        }
    }
    if !listings.is_empty() {
        table.write(listings).await.expect("listings");
    }
}

fn searches() -> [(&'static str, Search); 3] {
    let three = Search {
        countries: vec!["BR".into()],
        categories: vec!["forest".into()],
        standards: vec![Standard::Vcs],
        limit: 20,
        ..Default::default()
    };
    let text = Search {
        text: vec!["cookstove".into()],
        limit: 20,
        ..Default::default()
    };
    let facets = Search {
        categories: vec!["renewable-energy".into()],
        facets: true,
        limit: 20,
        ..Default::default()
    };
    [("three-filter", three), ("text", text), ("facets", facets)]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: catalogue DATA_DIR [PROJECTS]"));
    let count: usize = args
        .next()
        .map(|a| a.parse().expect("a count"))
        .unwrap_or(100_000);
    let store = amanar_embedded::EmbeddedStore::open(&dir).expect("the embedded store opens");
    let table: Arc<dyn Table> = Arc::new(store.table);
    let probe = Catalogue::new(
        table.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(3600),
    );
    probe.refresh().await.expect("a load");
    let filled = if probe.len() < count {
        let started = Instant::now();
        fill(&table, count).await;
        started.elapsed().as_secs_f64()
    } else {
        0.0
    };
    let started = Instant::now();
    let catalogue = Catalogue::new(
        table.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(3600),
    );
    catalogue.refresh().await.expect("a load");
    let load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut latencies = serde_json::Map::new();
    for (name, search) in searches() {
        let found = catalogue.search(&search).await.expect("a search");
        let runs = 2000;
        let started = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(catalogue.search(&search).await.expect("a search"));
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / runs as f64;
        latencies.insert(
            name.into(),
            json!({"matches": found.total, "mean_us": (micros * 10.0).round() / 10.0}),
        );
    }
    println!(
        "{}",
        json!({
            "projects": catalogue.len(),
            "fill_seconds": filled.round(),
            "cold_load_ms": load_ms.round(),
            "in_process": latencies,
        })
    );
}
