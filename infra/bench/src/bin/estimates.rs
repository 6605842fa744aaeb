//! Estimates per second in-process, single-threaded: `estimates [SECONDS]`.
//!
//! The workload is every factor of the shipped library, each with an amount that has a fractional
//! part, half of them in the factor's own unit and half in another unit of its type (a conversion).
//! The baseline, measured in the same run, is the bare decimal multiplication `amount × co2eKg` over
//! the same items: what an estimate would cost with no unit check, conversion, gas breakdown or
//! exactness tracking. Prints one JSON line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use amanar_accounting::{GwpSet, Library, Unit, UnitType, estimate};
use rust_decimal::Decimal;

struct Item {
    factor: &'static amanar_accounting::Factor,
    amount: Decimal,
    unit: &'static Unit,
}

fn items() -> Vec<Item> {
    let library = Library::shipped();
    library
        .factors()
        .iter()
        .enumerate()
        .map(|(i, factor)| {
            let other = factor
                .unit
                .unit_type
                .units()
                .find(|u| !std::ptr::eq(*u, factor.unit));
            let unit = match other {
                Some(u) if i % 2 == 1 && factor.unit.unit_type != UnitType::Count => u,
                _ => factor.unit,
            };
            Item {
                factor,
                amount: Decimal::new(1_234_567 + i as i64, 3),
                unit,
            }
        })
        .collect()
}

/// Runs `work` over the items repeatedly for about `seconds`; returns items per second.
fn rate(items: &[Item], seconds: f64, mut work: impl FnMut(&Item)) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        for item in items {
            work(item);
        }
        done += items.len() as u64;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(3.0);
    let load_started = Instant::now();
    let library = Library::shipped();
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
    let items = items();
    let converted = items
        .iter()
        .filter(|i| !std::ptr::eq(i.unit, i.factor.unit))
        .count();

    // Warm-up, then the baseline and the real thing, twice each, interleaved; the best of each.
    rate(&items, 0.5, |i| {
        black_box(estimate(i.factor, i.amount, i.unit, GwpSet::Ar5).ok());
    });
    let mut baseline = 0f64;
    let mut estimates = 0f64;
    for _ in 0..2 {
        baseline = baseline.max(rate(&items, seconds, |i| {
            black_box(black_box(i.amount) * black_box(i.factor.co2e_kg));
        }));
        estimates = estimates.max(rate(&items, seconds, |i| {
            black_box(estimate(i.factor, i.amount, i.unit, i.factor.gwp_set).ok());
        }));
    }
    let ar6 = rate(&items, seconds, |i| {
        black_box(estimate(i.factor, i.amount, i.unit, GwpSet::Ar6).ok());
    });
    let report = serde_json::json!({
        "factors": library.len(),
        "library_parse_ms": (load_ms * 100.0).round() / 100.0,
        "items": items.len(),
        "items_with_unit_conversion": converted,
        "baseline_multiplications_per_s": baseline.round(),
        "estimates_per_s": estimates.round(),
        "estimates_ar6_per_s": ar6.round(),
        "ratio_to_baseline": (estimates / baseline * 1000.0).round() / 1000.0,
    });
    println!("{report}");
}
