//! The footprint engine: activity entries in, one calculated line per entry and totals by GHG
//! Protocol scope, Scope 3 category and category out, in exact decimals.
//!
//! Every entry becomes an [`estimate`](crate::estimate::estimate) with the factor it names, so a
//! footprint line is exactly what `POST /v1/estimates` answers for the same input. Lines are written
//! as CSV while they are calculated (a footprint of half a million rows never holds them in
//! memory twice), and totals are folded in as they go. Factor look-ups are cached per distinct
//! input, so an import of many rows with a few activities resolves each factor once.
//!
//! Scope 2 is reported both ways (GHG Protocol Scope 2 Guidance): location-based from the grid
//! factor of the entry, and market-based from the supplier's own rate where the entry gives one,
//! else from the same grid factor (counted in `linesWithoutSupplierFactor`, to disclose). Biogenic
//! and other outside-of-scopes emissions are totalled apart and never in `co2eKg`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use amanar_http::{FieldError, quoted};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::estimate::{EstimateError, estimate};
use crate::factors::{CalorificBasis, Factor, Library, Scope, SelectError, Selector};
use crate::gwp::GwpSet;
use crate::units::{Conversion, Unit, UnitError, UnitType};

/// The 15 Scope 3 categories of the GHG Protocol Corporate Value Chain Standard.
pub const SCOPE3_CATEGORIES: [&str; 15] = [
    "Purchased goods and services",
    "Capital goods",
    "Fuel- and energy-related activities",
    "Upstream transportation and distribution",
    "Waste generated in operations",
    "Business travel",
    "Employee commuting",
    "Upstream leased assets",
    "Downstream transportation and distribution",
    "Processing of sold products",
    "Use of sold products",
    "End-of-life treatment of sold products",
    "Downstream leased assets",
    "Franchises",
    "Investments",
];

/// How an entry or an estimate names its factor, and the unit of its amount.
#[derive(Debug, Clone, Copy, Default)]
pub struct FactorChoice<'a> {
    pub factor_id: Option<&'a str>,
    pub activity_id: Option<&'a str>,
    pub region: Option<&'a str>,
    pub year: Option<u16>,
    pub calorific_basis: Option<CalorificBasis>,
    pub unit: &'a str,
}

/// The units a factor accepts, for error messages.
pub fn accepted_units(factor: &Factor) -> String {
    if factor.unit.unit_type == UnitType::Count {
        return factor.unit.symbol.to_owned();
    }
    factor
        .unit
        .unit_type
        .units()
        .map(|u| u.symbol)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the factor and the unit an entry names. Errors name the entry's field.
pub fn resolve<'l>(
    library: &'l Library,
    choice: &FactorChoice<'_>,
) -> Result<(&'l Factor, &'static Unit), FieldError> {
    let unit = Unit::parse(choice.unit);
    let factor = match (choice.factor_id, choice.activity_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(FieldError::new(
                "factorId",
                "give either factorId, or activityId (with region and year as needed), not both",
            ));
        }
        (Some(id), None) => {
            let extra = [
                ("region", choice.region.is_some()),
                ("year", choice.year.is_some()),
                ("calorificBasis", choice.calorific_basis.is_some()),
            ];
            if let Some((field, _)) = extra.iter().find(|(_, given)| *given) {
                return Err(FieldError::new(
                    *field,
                    "only applies with activityId; a factorId already names one factor",
                ));
            }
            library
                .get(id)
                .ok_or_else(|| FieldError::new("factorId", "no emission factor has this id"))?
        }
        (None, Some(activity_id)) => {
            let Some(unit) = unit else {
                return Err(FieldError::new(
                    "unit",
                    format!("unknown unit {}; see GET /v1/units", quoted(choice.unit)),
                ));
            };
            let selector = Selector {
                activity_id,
                region: choice.region,
                year: choice.year,
                calorific_basis: choice.calorific_basis,
            };
            library.select(&selector, unit).map_err(|e| {
                let field = match &e {
                    SelectError::UnknownActivity(_) => "activityId",
                    SelectError::NoneFor { field, .. } | SelectError::Ambiguous { field, .. } => {
                        field
                    }
                    SelectError::WrongUnitType { .. } => "unit",
                };
                FieldError::new(field, e.to_string())
            })?
        }
    };
    let Some(unit) = unit else {
        return Err(FieldError::new(
            "unit",
            format!(
                "unknown unit {}; this factor is per {} and accepts: {}",
                quoted(choice.unit),
                factor.unit,
                accepted_units(factor)
            ),
        ));
    };
    if let Err(error) = Conversion::between(unit, factor.unit) {
        return Err(estimate_error(factor, EstimateError::Unit(error)));
    }
    Ok((factor, unit))
}

/// The field error an estimate failure is reported as.
pub fn estimate_error(factor: &Factor, error: EstimateError) -> FieldError {
    match error {
        EstimateError::NegativeAmount => FieldError::new("amount", error.to_string()),
        EstimateError::Unit(UnitError::Incompatible { from, to }) => FieldError::new(
            "unit",
            format!(
                "{from} is a {} unit, but this factor is per {to} ({}) and accepts: {}",
                from.unit_type,
                to.unit_type,
                accepted_units(factor)
            ),
        ),
        EstimateError::Unit(UnitError::Unknown(_)) => FieldError::new("unit", error.to_string()),
        EstimateError::Unit(UnitError::Overflow) | EstimateError::TooLarge => {
            FieldError::new("amount", error.to_string())
        }
        EstimateError::GwpUnavailable { .. } => FieldError::new("gwpSet", error.to_string()),
    }
}

/// Market-based Scope 2: the supplier's own emission rate, in kg CO2e per `unit`.
#[derive(Debug, Clone, Copy)]
pub struct SupplierRate<'a> {
    pub co2e_kg: Decimal,
    pub unit: &'a str,
}

/// One activity to account for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry<'a> {
    /// The user's own description ("Head office boiler").
    pub label: Option<&'a str>,
    /// Groups lines in `byCategory`; defaults to the factor's category (its first level).
    pub category: Option<&'a str>,
    pub factor: FactorChoice<'a>,
    pub amount: Decimal,
    /// Overrides the factor's Scope 3 category (scope 3 factors only), e.g. 7 for commuting with a
    /// business-travel factor.
    pub scope3_category: Option<u8>,
    pub supplier_rate: Option<SupplierRate<'a>>,
    /// Divides the result: a household's energy shared by its members.
    pub share_of: Option<u32>,
}

/// Totals per GHG Protocol scope (Scope 2 location-based).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ByScope {
    #[serde(rename = "1")]
    #[schema(value_type = String)]
    pub scope1: Decimal,
    #[serde(rename = "2")]
    #[schema(value_type = String)]
    pub scope2: Decimal,
    #[serde(rename = "3")]
    #[schema(value_type = String)]
    pub scope3: Decimal,
}

/// Scope 2 reported both ways.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scope2 {
    /// From grid-average factors (what `byScope` and `co2eKg` count).
    #[schema(value_type = String)]
    pub location_based_co2e_kg: Decimal,
    /// From supplier rates where given, else the same grid factors.
    #[schema(value_type = String)]
    pub market_based_co2e_kg: Decimal,
    pub lines_with_supplier_factor: u64,
    /// Lines whose market-based figure fell back to the grid average (disclose these).
    pub lines_without_supplier_factor: u64,
}

/// One Scope 3 category's total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scope3Total {
    /// 1 to 15.
    pub category: u8,
    pub name: String,
    #[schema(value_type = String)]
    pub co2e_kg: Decimal,
    pub line_count: u64,
}

/// One category's total (the calculator's categories, the entry's own, or the factor's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryTotal {
    pub category: String,
    #[schema(value_type = String)]
    pub co2e_kg: Decimal,
    pub line_count: u64,
}

/// What a footprint adds up to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Scopes 1, 2 (location-based) and 3, in kg CO2e.
    #[schema(value_type = String, example = "4310.5")]
    pub co2e_kg: Decimal,
    pub by_scope: ByScope,
    pub scope2: Scope2,
    pub by_scope3_category: Vec<Scope3Total>,
    pub by_category: Vec<CategoryTotal>,
    /// Biogenic CO2 and other emissions outside the scopes, reported apart (never in `co2eKg`).
    #[schema(value_type = String)]
    pub outside_of_scopes_co2e_kg: Decimal,
    /// The GWP sets the lines are on (one set unless factors from sources on different sets mix
    /// and no `gwpSet` was asked for).
    pub gwp_sets: Vec<GwpSet>,
    /// Whether every line and total is exact (no digit rounded away).
    pub exact: bool,
}

/// A finished calculation.
#[derive(Debug)]
pub struct Computed {
    pub totals: Totals,
    pub line_count: u64,
    /// `text/csv`: one row per line, in entry order.
    pub lines_csv: Vec<u8>,
}

/// Longest label, in characters.
pub const MAX_LABEL: usize = 200;
/// Longest category name, in characters.
pub const MAX_CATEGORY: usize = 100;
/// Most distinct categories in one footprint (its totals are stored as one item).
pub const MAX_CATEGORIES: usize = 100;

/// Columns of the lines CSV.
pub const LINE_COLUMNS: [&str; 21] = [
    "line",
    "label",
    "category",
    "scope",
    "scope3Category",
    "co2eKg",
    "marketBasedCo2eKg",
    "factorId",
    "activityId",
    "source",
    "sourceId",
    "region",
    "year",
    "amount",
    "unit",
    "convertedAmount",
    "factorUnit",
    "factorValue",
    "gwpSet",
    "shareOf",
    "exact",
];

#[derive(Debug, Default)]
struct Sums {
    total: Decimal,
    by_scope: ByScope,
    scope2_market: Decimal,
    with_supplier: u64,
    without_supplier: u64,
    /// Index 0..15 for categories 1..15.
    scope3: [(Decimal, u64); 15],
    categories: BTreeMap<String, (Decimal, u64)>,
    outside: Decimal,
    gwp_sets: BTreeSet<GwpSet>,
    exact: bool,
}

fn too_large() -> FieldError {
    FieldError::new(
        "amount",
        "the footprint's totals would exceed what a decimal holds (7.9e28)",
    )
}

/// Text a user typed, made safe to open in a spreadsheet: a cell that starts like a formula gets a
/// leading `'` so it is shown, never run (OWASP's CSV injection advice). "Starts like" looks past
/// leading whitespace (spreadsheets trim it: ` =1+1` is a formula) and counts the full-width
/// forms (`＝ ＋ － ＠`), which some spreadsheets read as their ASCII twins.
fn spreadsheet_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let first = text
        .chars()
        .find(|c| !matches!(c, ' ' | '\u{3000}' | '\u{a0}'));
    let starts_control = text.starts_with(['\t', '\r', '\n']);
    match first {
        Some('=' | '+' | '-' | '@' | '\u{ff1d}' | '\u{ff0b}' | '\u{ff0d}' | '\u{ff20}') => {
            format!("'{text}").into()
        }
        _ if starts_control => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// `value` divided among `share_of` (when sharing), noting in `exact` whether that rounded.
fn shared(
    value: Decimal,
    share_of: Option<Decimal>,
    exact: &mut bool,
) -> Result<Decimal, FieldError> {
    match share_of {
        None => Ok(value),
        Some(n) => {
            let result = crate::units::Exactly::exact(value)
                .divided_by(n)
                .ok_or_else(too_large)?;
            *exact &= result.exact;
            Ok(result.value.normalize())
        }
    }
}

fn add(sum: &mut Decimal, value: Decimal) -> Result<(), FieldError> {
    *sum = sum.checked_add(value).ok_or_else(too_large)?;
    Ok(())
}

/// Calculates footprint lines one entry at a time.
pub struct Calculation<'l> {
    library: &'l Library,
    gwp_set: Option<GwpSet>,
    resolved: HashMap<String, Result<(&'l Factor, &'static Unit), FieldError>>,
    key: String,
    sums: Sums,
    lines: csv::Writer<Vec<u8>>,
    line_count: u64,
    text: String,
}

impl<'l> Calculation<'l> {
    /// A calculation on the factors' own GWP sets, or restated on `gwp_set`.
    pub fn new(library: &'l Library, gwp_set: Option<GwpSet>) -> Self {
        let mut lines = csv::Writer::from_writer(Vec::with_capacity(64 * 1024));
        lines
            .write_record(LINE_COLUMNS)
            .expect("writing to memory cannot fail");
        Calculation {
            library,
            gwp_set,
            resolved: HashMap::new(),
            key: String::new(),
            sums: Sums {
                exact: true,
                ..Sums::default()
            },
            lines,
            line_count: 0,
            text: String::new(),
        }
    }

    fn resolve(
        &mut self,
        choice: &FactorChoice<'_>,
    ) -> Result<(&'l Factor, &'static Unit), FieldError> {
        // Each part with its length first, so no two different inputs make the same key.
        self.key.clear();
        for part in [
            choice.factor_id.unwrap_or(""),
            choice.activity_id.unwrap_or(""),
            choice.region.unwrap_or(""),
            choice.calorific_basis.map_or("", CalorificBasis::as_str),
            choice.unit,
        ] {
            let _ = write!(self.key, "{}:{part}", part.len());
        }
        if let Some(year) = choice.year {
            let _ = write!(self.key, "{year}");
        }
        if let Some(found) = self.resolved.get(self.key.as_str()) {
            return found.clone();
        }
        let found = resolve(self.library, choice);
        self.resolved.insert(self.key.clone(), found.clone());
        found
    }

    /// Calculates one entry and adds it to the totals. `line` numbers it in the lines CSV (an
    /// entry's position, or a CSV file's row). Field names in errors are relative to the entry. An
    /// entry refused for its input adds nothing; a decimal overflow of the totals (past 7.9e28) may
    /// leave them part-added, and the caller must then discard the calculation, as every caller
    /// does on any error.
    pub fn add(&mut self, line: u64, entry: &Entry<'_>) -> Result<(), FieldError> {
        if entry.label.is_some_and(|l| l.chars().count() > MAX_LABEL) {
            return Err(FieldError::new(
                "label",
                format!("must be at most {MAX_LABEL} characters"),
            ));
        }
        if let Some(category) = entry.category {
            if category.is_empty() || category.chars().count() > MAX_CATEGORY {
                return Err(FieldError::new(
                    "category",
                    format!("must be 1 to {MAX_CATEGORY} characters"),
                ));
            }
            if self.sums.categories.len() >= MAX_CATEGORIES
                && !self.sums.categories.contains_key(category)
            {
                return Err(FieldError::new(
                    "category",
                    format!("a footprint has at most {MAX_CATEGORIES} distinct categories"),
                ));
            }
        }
        let (factor, unit) = self.resolve(&entry.factor)?;
        let gwp_set = self.gwp_set.unwrap_or(factor.gwp_set);
        let estimate =
            estimate(factor, entry.amount, unit, gwp_set).map_err(|e| estimate_error(factor, e))?;
        let scope3_category = match (entry.scope3_category, factor.scope) {
            (None, _) => factor.scope3_category,
            (Some(c), Scope::Three) if (1..=15).contains(&c) => Some(c),
            (Some(_), Scope::Three) => {
                return Err(FieldError::new(
                    "scope3Category",
                    "must be a GHG Protocol Scope 3 category, 1 to 15",
                ));
            }
            (Some(_), scope) => {
                return Err(FieldError::new(
                    "scope3Category",
                    format!(
                        "only applies to scope 3 factors; this factor is scope {}",
                        scope.as_str()
                    ),
                ));
            }
        };
        let share_of = match entry.share_of {
            Some(0) => return Err(FieldError::new("shareOf", "must be at least 1")),
            other => other.filter(|n| *n > 1).map(Decimal::from),
        };
        let mut exact = estimate.exact;
        let co2e_kg = shared(estimate.co2e_kg, share_of, &mut exact)?;
        let market_based = match (entry.supplier_rate, factor.scope) {
            (None, Scope::Two) => Some(co2e_kg),
            (None, _) => None,
            (Some(rate), Scope::Two) => {
                if rate.co2e_kg.is_sign_negative() && !rate.co2e_kg.is_zero() {
                    return Err(FieldError::new(
                        "supplierFactor.co2eKg",
                        "must not be negative",
                    ));
                }
                let Some(rate_unit) = Unit::parse(rate.unit) else {
                    return Err(FieldError::new(
                        "supplierFactor.unit",
                        format!("unknown unit {}; see GET /v1/units", quoted(rate.unit)),
                    ));
                };
                let converted = Conversion::between(unit, rate_unit)
                    .map_err(|e| FieldError::new("supplierFactor.unit", e.to_string()))?
                    .apply(entry.amount)
                    .ok_or_else(too_large)?;
                let value = converted.times(rate.co2e_kg).ok_or_else(too_large)?;
                exact &= value.exact;
                Some(shared(value.value, share_of, &mut exact)?)
            }
            (Some(_), scope) => {
                return Err(FieldError::new(
                    "supplierFactor",
                    format!(
                        "a supplier factor (market-based Scope 2) only applies to scope 2 factors; this factor is scope {}",
                        scope.as_str()
                    ),
                ));
            }
        };

        // All checks passed: fold the line into the totals. Only a decimal overflow (totals past
        // 7.9e28) can fail from here, and callers then discard the whole calculation.
        let sums = &mut self.sums;
        match factor.scope {
            Scope::One => add(&mut sums.by_scope.scope1, co2e_kg)?,
            Scope::Two => {
                add(&mut sums.by_scope.scope2, co2e_kg)?;
                add(&mut sums.scope2_market, market_based.unwrap_or(co2e_kg))?;
                if entry.supplier_rate.is_some() {
                    sums.with_supplier += 1;
                } else {
                    sums.without_supplier += 1;
                }
            }
            Scope::Three => {
                add(&mut sums.by_scope.scope3, co2e_kg)?;
                if let Some(c) = scope3_category {
                    let slot = &mut sums.scope3[usize::from(c - 1)];
                    add(&mut slot.0, co2e_kg)?;
                    slot.1 += 1;
                }
            }
            Scope::Outside => add(&mut sums.outside, co2e_kg)?,
        }
        if factor.scope != Scope::Outside {
            add(&mut sums.total, co2e_kg)?;
        }
        let category = entry.category.unwrap_or_else(|| {
            factor
                .category
                .split(" > ")
                .next()
                .unwrap_or(&factor.category)
        });
        // Categories break the scopes down, so emissions outside them stay out, as from co2eKg.
        if factor.scope != Scope::Outside {
            match sums.categories.get_mut(category) {
                Some(slot) => {
                    add(&mut slot.0, co2e_kg)?;
                    slot.1 += 1;
                }
                None => {
                    sums.categories.insert(category.to_owned(), (co2e_kg, 1));
                }
            }
        }
        sums.gwp_sets.insert(gwp_set);
        sums.exact &= exact;

        // The line, as a CSV row.
        self.line_count += 1;
        let text = &mut self.text;
        let w = &mut self.lines;
        let mut decimal = |w: &mut csv::Writer<Vec<u8>>, value: Decimal| {
            text.clear();
            let _ = write!(text, "{value}");
            w.write_field(text.as_bytes())
        };
        let written: csv::Result<()> = (|| {
            w.write_field(line.to_string())?;
            w.write_field(spreadsheet_safe(entry.label.unwrap_or("")).as_bytes())?;
            w.write_field(spreadsheet_safe(category).as_bytes())?;
            w.write_field(factor.scope.as_str())?;
            w.write_field(scope3_category.map(|c| c.to_string()).unwrap_or_default())?;
            decimal(w, co2e_kg)?;
            match market_based {
                Some(value) => decimal(w, value)?,
                None => w.write_field("")?,
            }
            w.write_field(&factor.id)?;
            w.write_field(&factor.activity_id)?;
            w.write_field(factor.source.as_str())?;
            w.write_field(&factor.source_id)?;
            w.write_field(&factor.region)?;
            w.write_field(factor.year.to_string())?;
            decimal(w, estimate.amount)?;
            w.write_field(unit.symbol)?;
            decimal(w, estimate.converted_amount)?;
            w.write_field(factor.unit.symbol)?;
            decimal(w, estimate.factor_value)?;
            w.write_field(gwp_set.as_str())?;
            w.write_field(entry.share_of.map(|n| n.to_string()).unwrap_or_default())?;
            w.write_field(if exact { "true" } else { "false" })?;
            w.write_record(None::<&[u8]>)
        })();
        written.expect("writing to memory cannot fail");
        Ok(())
    }

    /// The totals and the lines CSV.
    pub fn finish(self) -> Computed {
        let sums = self.sums;
        let by_scope3_category = sums
            .scope3
            .iter()
            .enumerate()
            .filter(|(_, (_, lines))| *lines > 0)
            .map(|(i, (co2e, lines))| Scope3Total {
                category: i as u8 + 1,
                name: SCOPE3_CATEGORIES[i].to_owned(),
                co2e_kg: co2e.normalize(),
                line_count: *lines,
            })
            .collect();
        let by_category = sums
            .categories
            .into_iter()
            .map(|(category, (co2e, lines))| CategoryTotal {
                category,
                co2e_kg: co2e.normalize(),
                line_count: lines,
            })
            .collect();
        let totals = Totals {
            co2e_kg: sums.total.normalize(),
            by_scope: ByScope {
                scope1: sums.by_scope.scope1.normalize(),
                scope2: sums.by_scope.scope2.normalize(),
                scope3: sums.by_scope.scope3.normalize(),
            },
            scope2: Scope2 {
                location_based_co2e_kg: sums.by_scope.scope2.normalize(),
                market_based_co2e_kg: sums.scope2_market.normalize(),
                lines_with_supplier_factor: sums.with_supplier,
                lines_without_supplier_factor: sums.without_supplier,
            },
            by_scope3_category,
            by_category,
            outside_of_scopes_co2e_kg: sums.outside.normalize(),
            gwp_sets: sums.gwp_sets.into_iter().collect(),
            exact: sums.exact,
        };
        let lines_csv = self
            .lines
            .into_inner()
            .expect("writing to memory cannot fail");
        Computed {
            totals,
            line_count: self.line_count,
            lines_csv,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn activity<'a>(activity_id: &'a str, region: &'a str, unit: &'a str) -> FactorChoice<'a> {
        FactorChoice {
            activity_id: Some(activity_id),
            region: Some(region),
            unit,
            ..FactorChoice::default()
        }
    }

    fn entry<'a>(choice: FactorChoice<'a>, amount: &str) -> Entry<'a> {
        Entry {
            factor: choice,
            amount: dec(amount),
            ..Entry::default()
        }
    }

    #[test]
    fn lines_add_up_by_scope_category_and_scope3_category() {
        let mut calc = Calculation::new(Library::shipped(), None);
        // DESNZ 2023 natural gas (gross CV) 0.182928926174497 kg/kWh: 10 000 kWh, scope 1.
        calc.add(
            1,
            &entry(activity("fuel-natural_gas", "GB", "kWh"), "10000"),
        )
        .unwrap();
        // DESNZ 2023 UK electricity 0.207074288590604 kg/kWh: 20 000 kWh, scope 2.
        calc.add(
            2,
            &entry(activity("electricity-grid", "GB", "kWh"), "20000"),
        )
        .unwrap();
        // DESNZ T&D 0.017915111409396 kg/kWh: scope 3 category 3.
        calc.add(
            3,
            &entry(
                activity(
                    "transmission_and_distribution-t_and_d_uk_electricity-electricity_uk",
                    "GB",
                    "kWh",
                ),
                "20000",
            ),
        )
        .unwrap();
        let computed = calc.finish();
        let totals = computed.totals;
        assert_eq!(totals.by_scope.scope1, dec("1829.28926174497"));
        assert_eq!(totals.by_scope.scope2, dec("4141.48577181208"));
        assert_eq!(totals.by_scope.scope3, dec("358.30222818792"));
        assert_eq!(
            totals.co2e_kg,
            dec("1829.28926174497") + dec("4141.48577181208") + dec("358.30222818792")
        );
        assert_eq!(totals.by_scope3_category.len(), 1);
        assert_eq!(totals.by_scope3_category[0].category, 3);
        assert_eq!(
            totals.by_scope3_category[0].name,
            "Fuel- and energy-related activities"
        );
        assert_eq!(totals.scope2.market_based_co2e_kg, totals.by_scope.scope2);
        assert_eq!(totals.scope2.lines_without_supplier_factor, 1);
        assert_eq!(
            totals
                .by_category
                .iter()
                .map(|c| c.category.as_str())
                .collect::<Vec<_>>(),
            ["Fuels", "Transmission and distribution", "UK electricity"]
        );
        assert_eq!(totals.gwp_sets, [GwpSet::Ar5]);
        assert!(totals.exact);
        assert_eq!(computed.line_count, 3);
        let text = String::from_utf8(computed.lines_csv).unwrap();
        let mut rows = text.lines();
        assert_eq!(rows.next().unwrap(), LINE_COLUMNS.join(","));
        assert!(
            rows.next()
                .unwrap()
                .starts_with("1,,Fuels,1,,1829.28926174497,,ef_"),
            "{text}"
        );
    }

    #[test]
    fn a_supplier_rate_makes_the_market_based_figure_and_the_location_based_one_stays() {
        let mut calc = Calculation::new(Library::shipped(), None);
        let mut green = entry(activity("electricity-grid", "GB", "MWh"), "20");
        green.supplier_rate = Some(SupplierRate {
            co2e_kg: dec("0.05"),
            unit: "kWh",
        });
        calc.add(1, &green).unwrap();
        let totals = calc.finish().totals;
        assert_eq!(
            totals.scope2.location_based_co2e_kg,
            dec("4141.48577181208")
        );
        assert_eq!(totals.scope2.market_based_co2e_kg, dec("1000"));
        assert_eq!(totals.scope2.lines_with_supplier_factor, 1);
        assert_eq!(totals.co2e_kg, dec("4141.48577181208"));
    }

    #[test]
    fn a_supplier_rate_on_a_scope_1_factor_or_a_scope3_category_on_a_scope_2_one_is_refused() {
        let mut calc = Calculation::new(Library::shipped(), None);
        let mut gas = entry(activity("fuel-natural_gas", "GB", "kWh"), "1");
        gas.supplier_rate = Some(SupplierRate {
            co2e_kg: dec("0.1"),
            unit: "kWh",
        });
        assert_eq!(calc.add(1, &gas).unwrap_err().field, "supplierFactor");
        let mut power = entry(activity("electricity-grid", "GB", "kWh"), "1");
        power.scope3_category = Some(3);
        assert_eq!(calc.add(2, &power).unwrap_err().field, "scope3Category");
        let mut flight = entry(
            activity(
                "business_travel_air-flights-long_haul_to_from_uk-economy_class-with_rf",
                "GB",
                "passenger.km",
            ),
            "1",
        );
        flight.scope3_category = Some(16);
        assert_eq!(calc.add(3, &flight).unwrap_err().field, "scope3Category");
        flight.scope3_category = Some(7);
        calc.add(4, &flight).unwrap();
        let computed = calc.finish();
        assert_eq!(computed.line_count, 1, "refused entries add nothing");
        assert_eq!(computed.totals.by_scope3_category[0].category, 7);
    }

    #[test]
    fn a_shared_line_divides_exactly_or_says_it_rounded() {
        let mut calc = Calculation::new(Library::shipped(), None);
        let mut home = entry(activity("electricity-grid", "GB", "kWh"), "3000");
        home.share_of = Some(2);
        calc.add(1, &home).unwrap();
        let totals = calc.finish().totals;
        // 3000 × 0.207074288590604 / 2
        assert_eq!(totals.co2e_kg, dec("310.611432885906"));
        assert!(totals.exact);

        let mut calc = Calculation::new(Library::shipped(), None);
        home.amount = dec("1000");
        home.share_of = Some(3);
        calc.add(1, &home).unwrap();
        assert!(!calc.finish().totals.exact, "a third does not terminate");
    }

    #[test]
    fn outside_of_scopes_emissions_are_reported_apart_and_in_no_category() {
        let mut calc = Calculation::new(Library::shipped(), None);
        let mut biogenic = entry(
            activity("outside_of_scopes-biomass-wood_logs", "GB", "kWh"),
            "1000",
        );
        biogenic.category = Some("home_energy");
        let mut scope1 = entry(activity("bioenergy-biomass-wood_logs", "GB", "kWh"), "1000");
        scope1.category = Some("home_energy");
        calc.add(1, &biogenic).unwrap();
        calc.add(2, &scope1).unwrap();
        let computed = calc.finish();
        let totals = computed.totals;
        // DESNZ 2023: wood logs 0.01074 kg/kWh in scope 1, 0.35 kg/kWh biogenic CO2 outside.
        assert_eq!(totals.co2e_kg, dec("10.74"));
        assert_eq!(totals.outside_of_scopes_co2e_kg, dec("350"));
        assert_eq!(totals.by_category.len(), 1);
        assert_eq!(totals.by_category[0].co2e_kg, dec("10.74"));
        assert_eq!(computed.line_count, 2, "the biogenic line is still a line");
    }

    #[test]
    fn formulas_behind_whitespace_or_in_full_width_forms_are_neutralised_too() {
        for cell in [
            "=1+1",
            " =1+1",
            "\u{3000}=1+1",
            "\t=1+1",
            "\n=1+1",
            "＝1+1",
            "＋1",
            "－1",
            "＠SUM(A1)",
            "  @SUM(A1)",
            "-2",
        ] {
            assert_eq!(spreadsheet_safe(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["Boiler", "a=b", "1-2", " Boiler", ""] {
            assert_eq!(spreadsheet_safe(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn labels_that_look_like_formulas_are_written_as_text() {
        let mut calc = Calculation::new(Library::shipped(), None);
        let mut gas = entry(activity("fuel-natural_gas", "GB", "kWh"), "1");
        gas.label = Some("=HYPERLINK(\"http://evil\")");
        calc.add(1, &gas).unwrap();
        let lines = String::from_utf8(calc.finish().lines_csv).unwrap();
        assert!(
            lines.contains("\n1,\"'=HYPERLINK(\"\"http://evil\"\")\",Fuels,"),
            "{lines}"
        );
    }

    #[test]
    fn factors_are_resolved_once_per_distinct_input() {
        let mut calc = Calculation::new(Library::shipped(), None);
        for line in 0..1000 {
            calc.add(
                line,
                &entry(activity("electricity-grid", "US-CAMX", "kWh"), "1"),
            )
            .unwrap();
        }
        assert_eq!(calc.resolved.len(), 1);
        assert_eq!(calc.finish().totals.by_scope.scope2.normalize(), {
            // eGRID 2024 CAMX 226.49817481291 kg/MWh, 1000 kWh in all
            dec("226.49817481291")
        });
    }
}
