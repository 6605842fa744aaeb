//! Activity CSV files: one activity per row, the same fields as a footprint entry of the API.
//!
//! The header names the columns, in any order. Names ignore case, spaces, `_` and `-`, so
//! `activity_id`, `Activity ID` and `activityId` are the same column. An unknown or repeated
//! column is an error of the file (a typo never drops data silently). Rows are numbered as the file's
//! lines, header included, so row 2 is the first activity, as a spreadsheet shows it. A UTF-8 byte
//! order mark (Excel writes one) is skipped, and rows whose fields are all empty are ignored.
//!
//! A file calculates completely or not at all: every row is checked, the first
//! [`MAX_REPORTED_ERRORS`] problems are reported with their row and column, and a file with any
//! problem produces no lines and no totals.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use amanar_http::problem::MAX_ECHO;
use amanar_http::quoted;

use crate::calculation::{Calculation, Computed, Entry, FactorChoice, SupplierRate};
use crate::factors::{CalorificBasis, Library};
use crate::gwp::GwpSet;

/// Most row errors an import reports in detail (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;

/// How often, in rows, progress is reported.
pub const PROGRESS_EVERY: u64 = 20_000;

/// One problem of a file, at a row (1 is the header) and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    pub row: u64,
    /// The column, as the API names the field (`amount`, `supplierFactor.unit`); empty for the row
    /// or file as a whole.
    pub field: String,
    pub message: String,
}

/// Why a file produced no footprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The first [`MAX_REPORTED_ERRORS`] problems, in file order.
    pub errors: Vec<RowError>,
    /// Every problem, including those not listed.
    pub error_count: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Label,
    Category,
    FactorId,
    ActivityId,
    Region,
    Year,
    CalorificBasis,
    Amount,
    Unit,
    Scope3Category,
    SupplierCo2eKg,
    SupplierUnit,
}

/// Column names as the API spells the fields, with the normalised spellings they accept.
const COLUMNS: [(&str, &[&str], Column); 12] = [
    ("label", &["label", "description"], Column::Label),
    ("category", &["category"], Column::Category),
    ("factorId", &["factorid"], Column::FactorId),
    ("activityId", &["activityid"], Column::ActivityId),
    ("region", &["region"], Column::Region),
    ("year", &["year"], Column::Year),
    (
        "calorificBasis",
        &["calorificbasis"],
        Column::CalorificBasis,
    ),
    ("amount", &["amount"], Column::Amount),
    ("unit", &["unit"], Column::Unit),
    (
        "scope3Category",
        &["scope3category"],
        Column::Scope3Category,
    ),
    (
        "supplierFactor.co2eKg",
        &["supplierfactorco2ekg", "supplierco2ekg", "supplierfactor"],
        Column::SupplierCo2eKg,
    ),
    (
        "supplierFactor.unit",
        &["supplierfactorunit", "supplierunit"],
        Column::SupplierUnit,
    ),
];

fn column_name(column: Column) -> &'static str {
    COLUMNS
        .iter()
        .find(|(_, _, c)| *c == column)
        .map(|(name, _, _)| *name)
        .unwrap_or("")
}

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A decimal as the API accepts it, in JSON strings and CSV cells alike: digits, one point, an
/// optional minus; no exponent or thousands separators.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    valid
        .then(|| Decimal::from_str(text).ok())
        .flatten()
        .ok_or_else(|| {
            format!(
                "{} is not a decimal such as \"12.5\" (digits and one point; no exponent or thousands separators; at most 28 digits)",
                quoted(text)
            )
        })
}

/// The line a record starts on, counted from the file itself (the csv crate's own line numbers
/// lag by one after a CRLF terminator).
struct Lines<'b> {
    body: &'b [u8],
    counted_to: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, byte: u64) -> u64 {
        let mut start = (byte as usize).min(self.body.len());
        while start < self.body.len() && matches!(self.body[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.counted_to {
            // A line ends at `\n`, or at a `\r` that no `\n` follows (old Mac files).
            let ends = self.body[self.counted_to..start]
                .iter()
                .enumerate()
                .filter(|&(i, b)| {
                    *b == b'\n'
                        || (*b == b'\r' && self.body.get(self.counted_to + i + 1) != Some(&b'\n'))
                })
                .count();
            self.line += ends as u64;
            self.counted_to = start;
        }
        self.line
    }
}

struct Errors {
    listed: Vec<RowError>,
    count: u64,
}

impl Errors {
    fn push(&mut self, row: u64, field: impl Into<String>, message: impl Into<String>) {
        self.count += 1;
        if self.listed.len() < MAX_REPORTED_ERRORS {
            self.listed.push(RowError {
                row,
                field: field.into(),
                message: message.into(),
            });
        }
    }
}

/// Calculates a whole activity file, or reports why it cannot. `progress` is called every
/// [`PROGRESS_EVERY`] rows with the rows and bytes read so far.
pub fn calculate(
    library: &Library,
    gwp_set: Option<GwpSet>,
    bytes: &[u8],
    mut progress: impl FnMut(u64, u64),
) -> Result<Computed, Rejected> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut errors = Errors {
        listed: Vec::new(),
        count: 0,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    let rejected = |errors: Errors, rows| Rejected {
        errors: errors.listed,
        error_count: errors.count,
        rows,
    };

    // The header.
    let header = match reader.read_byte_record(&mut record) {
        Ok(true) => record.clone(),
        Ok(false) => {
            errors.push(
                1,
                "",
                "the file is empty; the first row must name the columns",
            );
            return Err(rejected(errors, 0));
        }
        Err(e) => {
            errors.push(1, "", format!("the header cannot be read: {e}"));
            return Err(rejected(errors, 0));
        }
    };
    let mut columns: Vec<Option<Column>> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw);
        let key = normalise(&name);
        let column = COLUMNS
            .iter()
            .find(|(_, spellings, _)| spellings.contains(&key.as_str()))
            .map(|(_, _, c)| *c);
        match column {
            None if key.is_empty() => columns.push(None),
            None => {
                let known: Vec<&str> = COLUMNS.iter().map(|(n, _, _)| *n).collect();
                let name: String = name.trim().chars().take(MAX_ECHO).collect();
                errors.push(
                    1,
                    name.clone(),
                    format!(
                        "unknown column {} (column {}); the columns are: {}",
                        quoted(&name),
                        i + 1,
                        known.join(", ")
                    ),
                );
                columns.push(None);
            }
            Some(c) if columns.contains(&Some(c)) => {
                errors.push(
                    1,
                    column_name(c),
                    format!("column {} appears twice", column_name(c)),
                );
                columns.push(None);
            }
            Some(c) => columns.push(Some(c)),
        }
    }
    for (required, what) in [(Column::Amount, "amount"), (Column::Unit, "unit")] {
        if !columns.contains(&Some(required)) {
            errors.push(1, what, format!("the file needs a column {what}"));
        }
    }
    if !columns.contains(&Some(Column::FactorId)) && !columns.contains(&Some(Column::ActivityId)) {
        errors.push(
            1,
            "activityId",
            "the file needs a column activityId or factorId",
        );
    }
    if errors.count > 0 {
        return Err(rejected(errors, 0));
    }
    let at = |c: Column| columns.iter().position(|x| *x == Some(c));
    let label = at(Column::Label);
    let category = at(Column::Category);
    let factor_id = at(Column::FactorId);
    let activity_id = at(Column::ActivityId);
    let region = at(Column::Region);
    let year = at(Column::Year);
    let basis = at(Column::CalorificBasis);
    let amount = at(Column::Amount);
    let unit = at(Column::Unit);
    let scope3 = at(Column::Scope3Category);
    let supplier_co2e = at(Column::SupplierCo2eKg);
    let supplier_unit = at(Column::SupplierUnit);

    // The rows.
    let mut lines = Lines {
        body,
        counted_to: 0,
        line: 1,
    };
    let mut calc = Calculation::new(library, gwp_set);
    let mut rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let row = e.position().map_or(rows + 2, |p| lines.at(p.byte()));
                errors.push(row, "", format!("the row cannot be read: {e}"));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let row = record.position().map_or(rows + 2, |p| lines.at(p.byte()));
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        rows += 1;
        if rows.is_multiple_of(PROGRESS_EVERY) {
            progress(rows, record.position().map_or(0, |p| p.byte()));
        }
        if record.len() != header.len() {
            errors.push(
                row,
                "",
                format!(
                    "the row has {} fields, but the header names {} columns",
                    record.len(),
                    header.len()
                ),
            );
            continue;
        }
        let Ok(fields) = std::str::from_utf8(record.as_slice()) else {
            errors.push(row, "", "the row is not UTF-8 text");
            continue;
        };
        let field = |i: Option<usize>| -> Option<&str> {
            let range = record.range(i?)?;
            let text = fields[range].trim();
            (!text.is_empty()).then_some(text)
        };
        let mut bad = |column: Column, message: String| {
            errors.push(row, column_name(column), message);
        };
        let amount_value = match field(amount).map(parse_decimal) {
            Some(Ok(value)) => value,
            Some(Err(message)) => {
                bad(Column::Amount, message);
                continue;
            }
            None => {
                bad(Column::Amount, "is required".into());
                continue;
            }
        };
        let year_value = match field(year).map(u16::from_str) {
            None => None,
            Some(Ok(y)) => Some(y),
            Some(Err(_)) => {
                bad(Column::Year, "must be a year such as 2024".into());
                continue;
            }
        };
        let basis_value = match field(basis) {
            None => None,
            Some(text) if text.eq_ignore_ascii_case("gross") => Some(CalorificBasis::Gross),
            Some(text) if text.eq_ignore_ascii_case("net") => Some(CalorificBasis::Net),
            Some(_) => {
                bad(Column::CalorificBasis, "must be gross or net".into());
                continue;
            }
        };
        let scope3_value = match field(scope3).map(u8::from_str) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                bad(
                    Column::Scope3Category,
                    "must be a Scope 3 category number, 1 to 15".into(),
                );
                continue;
            }
        };
        let unit_text = field(unit).unwrap_or("");
        let supplier_rate = match field(supplier_co2e).map(parse_decimal) {
            None => None,
            Some(Ok(co2e_kg)) => Some(SupplierRate {
                co2e_kg,
                unit: field(supplier_unit).unwrap_or(unit_text),
            }),
            Some(Err(message)) => {
                bad(Column::SupplierCo2eKg, message);
                continue;
            }
        };
        let entry = Entry {
            label: field(label),
            category: field(category),
            factor: FactorChoice {
                factor_id: field(factor_id),
                activity_id: field(activity_id),
                region: field(region),
                year: year_value,
                calorific_basis: basis_value,
                unit: unit_text,
            },
            amount: amount_value,
            scope3_category: scope3_value,
            supplier_rate,
            share_of: None,
        };
        if let Err(error) = calc.add(row, &entry) {
            errors.push(row, error.field, error.message);
        }
    }
    if rows == 0 && errors.count == 0 {
        errors.push(2, "", "the file has a header but no activity rows");
    }
    if errors.count > 0 {
        return Err(rejected(errors, rows));
    }
    progress(rows, body.len() as u64);
    Ok(calc.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Computed, Rejected> {
        calculate(Library::shipped(), None, text.as_bytes(), |_, _| {})
    }

    #[test]
    fn a_valid_file_calculates_every_row_with_any_column_spelling() {
        let file = "\u{feff}Activity ID,Region,Amount,unit,Label\r\n\
                    fuel-natural_gas,GB,10000,kWh,Boiler\r\n\
                    ,,,,\r\n\
                    electricity-grid,GB,20,MWh,\"Office, floor 2\"\r\n";
        let computed = run(file).unwrap();
        assert_eq!(computed.line_count, 2);
        assert_eq!(
            computed.totals.co2e_kg.to_string(),
            "5970.77503355705" // 1829.28926174497 + 4141.48577181208
        );
        let lines = String::from_utf8(computed.lines_csv).unwrap();
        assert!(lines.contains("\n2,Boiler,Fuels,1,"), "{lines}");
        assert!(
            lines.contains("\n4,\"Office, floor 2\",UK electricity,2,"),
            "{lines}"
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_row_and_column_and_nothing_is_calculated() {
        let file = "activityId,region,amount,unit\n\
                    fuel-natural_gas,GB,100,kWh\n\
                    fuel-natural_gas,GB,1e3,kWh\n\
                    fuel-natural_gas,GB,100,litres of water\n\
                    electricity-grid,GB,5,kg\n\
                    no-such-activity,GB,1,kWh\n\
                    fuel-natural_gas,GB\n\
                    electricity-grid,,1,kWh\n";
        let rejected = run(file).unwrap_err();
        let listed: Vec<(u64, &str)> = rejected
            .errors
            .iter()
            .map(|e| (e.row, e.field.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (3, "amount"),
                (4, "unit"),
                (5, "unit"),
                (6, "activityId"),
                (7, ""),
                (8, "region")
            ]
        );
        assert_eq!(rejected.error_count, 6);
        assert_eq!(rejected.rows, 7);
        assert!(
            rejected.errors[2].message.contains("kWh"),
            "names the accepted units"
        );
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on_whatever_the_line_endings() {
        let file = "activityId,region,amount,unit,label\r\n\
                    fuel-natural_gas,GB,1,kWh,\"two\r\nlines\"\r\n\
                    fuel-natural_gas,GB,x,kWh,\r\n";
        let rejected = run(file).unwrap_err();
        assert_eq!(rejected.errors[0].row, 4);
        let old_mac = "activityId,region,amount,unit\r\
                       fuel-natural_gas,GB,1,kWh\r\
                       fuel-natural_gas,GB,x,kWh\r";
        assert_eq!(run(old_mac).unwrap_err().errors[0].row, 3);
    }

    #[test]
    fn an_unknown_or_missing_column_is_an_error_of_the_file() {
        let rejected = run("activityId,amout,unit\nfuel-natural_gas,1,kWh\n").unwrap_err();
        assert_eq!(rejected.errors[0].row, 1);
        assert!(
            rejected.errors[0]
                .message
                .contains("unknown column \"amout\"")
        );
        assert!(rejected.errors.iter().any(|e| e.field == "amount"));
        assert_eq!(rejected.rows, 0);
    }

    #[test]
    fn an_empty_file_or_a_header_alone_is_refused() {
        assert!(run("").unwrap_err().errors[0].message.contains("empty"));
        assert!(
            run("activityId,amount,unit\n").unwrap_err().errors[0]
                .message
                .contains("no activity rows")
        );
    }

    #[test]
    fn only_the_first_hundred_errors_are_listed_but_all_are_counted() {
        let mut file = String::from("activityId,region,amount,unit\n");
        for _ in 0..250 {
            file.push_str("fuel-natural_gas,GB,-1,kWh\n");
        }
        let rejected = run(&file).unwrap_err();
        assert_eq!(rejected.errors.len(), MAX_REPORTED_ERRORS);
        assert_eq!(rejected.error_count, 250);
    }

    #[test]
    fn a_supplier_rate_defaults_to_the_row_unit() {
        let file = "activityId,region,amount,unit,supplierFactor\n\
                    electricity-grid,GB,1000,kWh,0\n";
        let totals = run(file).unwrap().totals;
        assert_eq!(totals.scope2.market_based_co2e_kg, Decimal::ZERO);
        assert_eq!(totals.scope2.lines_with_supplier_factor, 1);
    }
}
