//! The serial parsers, pinned on real serial blocks from every registry sample present (derived
//! into `data/serials.csv` by `infra/data/build_offsets.py`, with each registry's stated quantity,
//! project and vintage beside the serial).

use amanar_marketplace::serial::{self, Range, Standard, Vintage};
use chrono::NaiveDate;

struct Row {
    standard: Standard,
    serial: String,
    quantity: u64,
    project: String,
    vintage: Vintage,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/serials.csv");
    let mut reader = csv::Reader::from_path(path).expect("data/serials.csv ships with the crate");
    reader
        .records()
        .map(|record| {
            let r = record.expect("a well-formed row");
            let vintage = match r[4].split_once('/') {
                Some((start, end)) => Vintage::Period {
                    start: NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap(),
                    end: NaiveDate::parse_from_str(end, "%Y-%m-%d").unwrap(),
                },
                None => Vintage::Year(r[4].parse().unwrap()),
            };
            Row {
                standard: Standard::parse(&r[0]).expect("a known standard"),
                serial: r[1].to_owned(),
                quantity: r[2].parse().unwrap(),
                project: r[3].to_owned(),
                vintage,
            }
        })
        .collect()
}

#[test]
fn every_real_serial_parses_to_its_registrys_quantity_project_and_vintage() {
    let rows = rows();
    // The counts DATA-SOURCES.md states: 40 per registry, 11 for ART TREES (its samples hold no more).
    for (standard, count) in [
        (Standard::Vcs, 40),
        (Standard::GoldStandard, 40),
        (Standard::Acr, 40),
        (Standard::Car, 40),
        (Standard::Art, 11),
        (Standard::Cercarbono, 40),
    ] {
        let rows = rows.iter().filter(|r| r.standard == standard).count();
        assert_eq!(rows, count, "{standard} serials in data/serials.csv");
    }
    let mut vintages = 0;
    for row in &rows {
        let block = serial::parse(row.standard, &row.serial)
            .unwrap_or_else(|e| panic!("{}: {e}", row.serial));
        assert_eq!(block.quantity(), row.quantity, "{}", row.serial);
        // The normalised id is exactly the registry's own (VCS1340, GS11236, CAR1335, ART130).
        assert_eq!(
            block.project.as_deref(),
            Some(row.project.as_str()),
            "{}",
            row.serial
        );
        assert!(
            !block.buffer,
            "{}: the samples' retirements are not buffer blocks",
            row.serial
        );
        if let Some(vintage) = block.vintage {
            vintages += 1;
            assert!(
                vintage.agrees_with(&row.vintage),
                "{}: vintage {vintage} against the registry's {}",
                row.serial,
                row.vintage
            );
        }
        assert_eq!(
            block.render(block.range),
            row.serial,
            "written back unchanged"
        );
    }
    // Every serial but Cercarbono's unsplit blocks states a vintage.
    assert!(vintages >= 171 + 10, "{vintages} serials stated a vintage");
}

#[test]
fn a_sub_range_of_a_real_serial_parses_back_into_the_same_namespace() {
    for row in rows() {
        let block = serial::parse(row.standard, &row.serial).unwrap();
        // The block without its first credit (a single credit stands for itself).
        let part = Range::new(block.range.first() + 1, block.range.last()).unwrap_or(block.range);
        let again = serial::parse(row.standard, &block.render(part)).unwrap();
        assert_eq!(again.range, part, "{}", row.serial);
        let mut same = again.clone();
        same.range = block.range;
        assert_eq!(same, block, "{}: only the range differs", row.serial);
    }
}
