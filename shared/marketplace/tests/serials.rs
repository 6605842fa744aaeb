//! The serial parsers, pinned on real serial blocks from every registry sample present (derived
//! into `data/serials.csv` by `infra/data/build_offsets.py`, with each registry's stated quantity,
//! project and vintage beside the serial).

use amanar_marketplace::serial::{self, Range, Standard, Vintage, same_project};
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
    for standard in [
        Standard::Vcs,
        Standard::GoldStandard,
        Standard::Acr,
        Standard::Car,
        Standard::Art,
        Standard::Cercarbono,
    ] {
        assert!(
            rows.iter().filter(|r| r.standard == standard).count() >= 8,
            "the table has too few {standard} serials"
        );
    }
    for row in &rows {
        let block = serial::parse(row.standard, &row.serial)
            .unwrap_or_else(|e| panic!("{}: {e}", row.serial));
        assert_eq!(block.quantity(), row.quantity, "{}", row.serial);
        let project = block
            .project
            .as_deref()
            .expect("every sample names its project");
        assert!(
            same_project(project, &row.project),
            "{}: project {project} against the registry's {}",
            row.serial,
            row.project
        );
        if let Some(vintage) = block.vintage {
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
}

#[test]
fn a_sub_range_of_a_real_serial_parses_back_into_the_same_namespace() {
    for row in rows() {
        let block = serial::parse(row.standard, &row.serial).unwrap();
        let part = Range::new(
            block.range.first,
            block.range.first + (block.quantity() - 1) / 2,
        )
        .unwrap();
        let again = serial::parse(row.standard, &block.render(part)).unwrap();
        assert_eq!(again.range, part, "{}", row.serial);
        assert_eq!(again.namespace, block.namespace, "{}", row.serial);
        assert_eq!(again.project, block.project);
    }
}
