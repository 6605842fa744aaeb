//! Activity-file rows per second in-process, single-threaded: `imports [ROWS] [RUNS]`.
//!
//! Calculates the benchmark activity file (see `workload.rs`) exactly as the import job does:
//! parse, resolve each row's factor, estimate, total by scope and category, and write the lines CSV.
//! The baseline, measured in the same run on the same bytes, is the csv crate reading every record
//! and nothing else: the floor for any CSV import. Prints one JSON line.

use std::hint::black_box;
use std::time::Instant;

use amanar_accounting::Library;
use amanar_accounting::activity_csv;
use amanar_bench::workload::activity_file;

fn best_of(runs: usize, mut work: impl FnMut() -> u64) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let started = Instant::now();
        out = black_box(work());
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, out)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(350_000);
    let runs: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    let file = activity_file(rows);
    let library = Library::shipped();

    let (parse_secs, parsed) = best_of(runs, || {
        let mut reader = csv::Reader::from_reader(file.as_slice());
        let mut record = csv::ByteRecord::new();
        let mut n = 0;
        while reader.read_byte_record(&mut record).unwrap() {
            n += 1;
        }
        n
    });
    let mut lines_bytes = 0;
    let (calc_secs, calculated) = best_of(runs, || {
        let computed = activity_csv::calculate(library, None, &file, |_, _| {})
            .expect("the benchmark file is valid");
        lines_bytes = computed.lines_csv.len();
        computed.line_count
    });
    assert_eq!(parsed, rows as u64);
    assert_eq!(calculated, rows as u64);
    let report = serde_json::json!({
        "rows": rows,
        "file_bytes": file.len(),
        "lines_csv_bytes": lines_bytes,
        "baseline_csv_read_rows_per_s": (rows as f64 / parse_secs).round(),
        "calculate_rows_per_s": (rows as f64 / calc_secs).round(),
        "calculate_ms": (calc_secs * 1000.0).round(),
        "ratio_to_baseline": (parse_secs / calc_secs * 1000.0).round() / 1000.0,
    });
    println!("{report}");
}
