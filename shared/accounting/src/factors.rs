//! The emission-factor library shipped with the project: `data/factors.csv`, derived from UK DESNZ,
//! the US EPA GHG Emission Factors Hub and USEEIO by `infra/data/build_factors.py` (see
//! DATA-SOURCES.md). It is compiled into the binary and parsed once, on first use.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::gwp::GwpSet;
use crate::units::{Unit, UnitType};

/// Where a factor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Desnz,
    EpaHub,
    Useeio,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Desnz, Source::EpaHub, Source::Useeio];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Desnz => "desnz",
            Source::EpaHub => "epa_hub",
            Source::Useeio => "useeio",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The publication, its publisher, licence and attribution.
    pub fn info(self) -> &'static SourceInfo {
        match self {
            Source::Desnz => &SourceInfo {
                title: "UK Government GHG Conversion Factors for Company Reporting 2023 (flat file v1.1)",
                publisher: "UK Department for Energy Security and Net Zero (DESNZ)",
                url: "https://www.gov.uk/government/publications/greenhouse-gas-reporting-conversion-factors-2023",
                licence: "Open Government Licence v3.0",
                attribution: "Contains public sector information licensed under the Open Government Licence v3.0.",
            },
            Source::EpaHub => &SourceInfo {
                title: "GHG Emission Factors Hub (2023 and 2024 editions)",
                publisher: "US Environmental Protection Agency",
                url: "https://www.epa.gov/climateleadership/ghg-emission-factors-hub",
                licence: "US federal government work, public domain",
                attribution: "US EPA GHG Emission Factors Hub.",
            },
            Source::Useeio => &SourceInfo {
                title: "Supply Chain Greenhouse Gas Emission Factors v1.2 by NAICS-6 (USEEIO, 2021 USD)",
                publisher: "US Environmental Protection Agency",
                url: "https://catalog.data.gov/dataset/supply-chain-greenhouse-gas-emission-factors-v1-2-by-naics-6",
                licence: "EPA ScienceHub licence (https://pasteur.epa.gov/license/sciencehub-license.html)",
                attribution: "US EPA Supply Chain GHG Emission Factors v1.2 (USEEIO).",
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A publication the library draws on.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    pub title: &'static str,
    pub publisher: &'static str,
    pub url: &'static str,
    pub licence: &'static str,
    pub attribution: &'static str,
}

/// GHG Protocol scope of the emissions a factor measures.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    #[serde(rename = "1")]
    One,
    #[serde(rename = "2")]
    Two,
    #[serde(rename = "3")]
    Three,
    /// Biogenic CO2 and other emissions reported outside the scopes.
    #[serde(rename = "outside")]
    Outside,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::One => "1",
            Scope::Two => "2",
            Scope::Three => "3",
            Scope::Outside => "outside",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [Scope::One, Scope::Two, Scope::Three, Scope::Outside]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Whether an energy factor is per unit of gross (higher) or net (lower) calorific value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalorificBasis {
    Gross,
    Net,
}

impl CalorificBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            CalorificBasis::Gross => "gross",
            CalorificBasis::Net => "net",
        }
    }
}

/// How a factor's per-gas values are expressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GasBasis {
    /// kg CO2e of each gas, on the factor's GWP set (DESNZ).
    Co2e,
    /// kg of each gas itself (EPA).
    Mass,
}

/// Per-gas values of a factor, per unit. A gas the source does not give is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gases {
    pub basis: GasBasis,
    pub co2: Option<Decimal>,
    pub ch4: Option<Decimal>,
    pub n2o: Option<Decimal>,
}

/// One emission factor: kg CO2e per one `unit` of an activity, from one source, year and region.
#[derive(Debug, Clone)]
pub struct Factor {
    pub id: String,
    pub activity_id: String,
    pub source: Source,
    pub source_id: String,
    pub year: u16,
    pub region: String,
    pub name: String,
    pub category: String,
    pub scope: Scope,
    pub scope3_category: Option<u8>,
    pub unit: &'static Unit,
    pub calorific_basis: Option<CalorificBasis>,
    /// Total kg CO2e per unit, as published, on `gwp_set`.
    pub co2e_kg: Decimal,
    pub gases: Option<Gases>,
    /// The GWP set the source's totals use.
    pub gwp_set: GwpSet,
    pub notes: String,
    /// Whether the per-gas values account for the whole total, so the factor can be restated on
    /// another GWP set.
    pub regassable: bool,
    search_text: String,
}

impl Factor {
    /// The GWP sets an estimate with this factor may use.
    pub fn gwp_sets(&self) -> Vec<GwpSet> {
        if self.regassable {
            GwpSet::ALL.to_vec()
        } else {
            vec![self.gwp_set]
        }
    }

    fn matches(&self, filter: &Filter) -> bool {
        filter.source.is_none_or(|s| s == self.source)
            && filter.year.is_none_or(|y| y == self.year)
            && filter.unit_type.is_none_or(|t| t == self.unit.unit_type)
            && filter.scope.is_none_or(|s| s == self.scope)
            && filter
                .region
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case(&self.region))
            && filter
                .source_id
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(&self.source_id))
            && filter
                .activity_id
                .as_deref()
                .is_none_or(|a| a == self.activity_id)
            && filter.words.iter().all(|w| self.search_text.contains(w))
    }
}

/// What `GET /v1/emission-factors` narrows by. Every field set must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lower-case words that must all occur in the name, category, activity id, source id or notes.
    pub words: Vec<String>,
    pub source: Option<Source>,
    pub region: Option<String>,
    pub year: Option<u16>,
    pub unit_type: Option<UnitType>,
    pub scope: Option<Scope>,
    pub source_id: Option<String>,
    pub activity_id: Option<String>,
}

impl Filter {
    pub fn with_text(mut self, text: &str) -> Self {
        self.words = text
            .split(|c: char| !c.is_alphanumeric() && c != '.' && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        self
    }
}

/// How an estimate names its factor when it does not give a factor id.
#[derive(Debug, Clone, Default)]
pub struct Selector<'a> {
    pub activity_id: &'a str,
    pub region: Option<&'a str>,
    pub year: Option<u16>,
    pub calorific_basis: Option<CalorificBasis>,
}

/// Why no single factor fits a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no factor has activity id {0}")]
    UnknownActivity(String),
    #[error("the activity has no factor for this region and year; it has {available}")]
    NoneFor {
        field: &'static str,
        available: String,
    },
    #[error("{message}")]
    Ambiguous {
        field: &'static str,
        message: String,
    },
    #[error("the activity has no factor per {unit_type} unit; give one of: {accepted}")]
    WrongUnitType {
        unit_type: UnitType,
        accepted: String,
    },
}

/// The library: every factor, indexed by id.
#[derive(Debug)]
pub struct Library {
    factors: Vec<Factor>,
    by_id: HashMap<String, usize>,
    /// Positions of each activity's factors, in library order.
    by_activity: HashMap<String, Vec<usize>>,
    version: u64,
}

/// A row of `factors.csv` that does not make a valid factor.
#[derive(Debug, thiserror::Error)]
#[error("factors.csv line {line}: {message}")]
pub struct LibraryError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    activity_id: String,
    source: String,
    source_id: String,
    year: u16,
    region: String,
    name: String,
    category: String,
    scope: String,
    scope3_category: Option<u8>,
    unit_type: String,
    unit: String,
    calorific_basis: String,
    co2e_kg: String,
    co2: String,
    ch4: String,
    n2o: String,
    gas_basis: String,
    gwp_set: String,
    notes: String,
}

/// The shipped table.
const SHIPPED: &str = include_str!("../data/factors.csv");

/// Relative tolerance within which per-gas parts published in CO2e must add up to the total for a
/// factor to be restated on another GWP set (the source values carry 15 significant digits).
fn parts_add_up(parts: Decimal, total: Decimal) -> bool {
    (parts - total).abs() <= total.abs() * Decimal::new(1, 12)
}

fn optional_decimal(text: &str, what: &str) -> Result<Option<Decimal>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    Decimal::from_str(text)
        .map(Some)
        .map_err(|e| format!("{what} {text:?} is not a decimal: {e}"))
}

impl Row {
    fn into_factor(self) -> Result<Factor, String> {
        let source =
            Source::parse(&self.source).ok_or(format!("unknown source {:?}", self.source))?;
        let scope = Scope::parse(&self.scope).ok_or(format!("unknown scope {:?}", self.scope))?;
        let unit = Unit::parse(&self.unit).ok_or(format!("unknown unit {:?}", self.unit))?;
        if unit.unit_type.as_str() != self.unit_type {
            return Err(format!("{} is not a {} unit", self.unit, self.unit_type));
        }
        let calorific_basis = match self.calorific_basis.as_str() {
            "" => None,
            "gross" => Some(CalorificBasis::Gross),
            "net" => Some(CalorificBasis::Net),
            other => return Err(format!("unknown calorific basis {other:?}")),
        };
        let gwp_set =
            GwpSet::parse(&self.gwp_set).ok_or(format!("unknown GWP set {:?}", self.gwp_set))?;
        let co2e_kg = optional_decimal(&self.co2e_kg, "co2eKg")?.ok_or("co2eKg is empty")?;
        let (co2, ch4, n2o) = (
            optional_decimal(&self.co2, "co2")?,
            optional_decimal(&self.ch4, "ch4")?,
            optional_decimal(&self.n2o, "n2o")?,
        );
        let gases = match self.gas_basis.as_str() {
            "" => None,
            "co2e" => Some(GasBasis::Co2e),
            "mass" => Some(GasBasis::Mass),
            other => return Err(format!("unknown gas basis {other:?}")),
        }
        .map(|basis| Gases {
            basis,
            co2,
            ch4,
            n2o,
        });
        let regassable = match gases {
            None => false,
            Some(g) => {
                let part = |gas: Option<Decimal>, gwp: Decimal| match g.basis {
                    GasBasis::Co2e => gas.unwrap_or_default(),
                    GasBasis::Mass => gas.unwrap_or_default() * gwp,
                };
                let parts = g.co2.unwrap_or_default()
                    + part(g.ch4, gwp_set.ch4())
                    + part(g.n2o, gwp_set.n2o());
                parts_add_up(parts, co2e_kg)
            }
        };
        let search_text = [
            &self.name,
            &self.category,
            &self.activity_id,
            &self.source_id,
            &self.notes,
        ]
        .map(|s| s.to_lowercase())
        .join(" ");
        Ok(Factor {
            id: self.id,
            activity_id: self.activity_id,
            source,
            source_id: self.source_id,
            year: self.year,
            region: self.region,
            name: self.name,
            category: self.category,
            scope,
            scope3_category: self.scope3_category,
            unit,
            calorific_basis,
            co2e_kg,
            gases,
            gwp_set,
            notes: self.notes,
            regassable,
            search_text,
        })
    }
}

impl Library {
    /// The library compiled into this binary, parsed on first use.
    pub fn shipped() -> &'static Library {
        static LIBRARY: OnceLock<Library> = OnceLock::new();
        LIBRARY.get_or_init(|| Library::parse(SHIPPED).expect("the shipped factors.csv is valid"))
    }

    pub fn parse(csv_text: &str) -> Result<Library, LibraryError> {
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let mut factors = Vec::new();
        let mut by_id = HashMap::new();
        for record in reader.deserialize::<Row>() {
            let (line, row) = match record {
                Ok(row) => (factors.len() as u64 + 2, row),
                Err(e) => {
                    return Err(LibraryError {
                        line: e.position().map_or(0, |p| p.line()),
                        message: e.to_string(),
                    });
                }
            };
            let factor = row
                .into_factor()
                .map_err(|message| LibraryError { line, message })?;
            if by_id.insert(factor.id.clone(), factors.len()).is_some() {
                return Err(LibraryError {
                    line,
                    message: format!("id {} appears twice", factor.id),
                });
            }
            factors.push(factor);
        }
        let mut by_activity: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, factor) in factors.iter().enumerate() {
            by_activity
                .entry(factor.activity_id.clone())
                .or_default()
                .push(position);
        }
        Ok(Library {
            factors,
            by_id,
            by_activity,
            // A fingerprint of the table, so that cursors from another edition are refused.
            version: amanar_core::fnv1a(csv_text.as_bytes()),
        })
    }

    pub fn len(&self) -> usize {
        self.factors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.factors.is_empty()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn factors(&self) -> &[Factor] {
        &self.factors
    }

    pub fn get(&self, id: &str) -> Option<&Factor> {
        self.by_id.get(id).map(|&i| &self.factors[i])
    }

    /// Up to `limit` factors matching `filter`, starting at position `from`, and the position to
    /// continue from if more may follow.
    pub fn search(
        &self,
        filter: &Filter,
        from: usize,
        limit: usize,
    ) -> (Vec<&Factor>, Option<usize>) {
        let mut found = Vec::with_capacity(limit);
        for (position, factor) in self.factors.iter().enumerate().skip(from) {
            if !factor.matches(filter) {
                continue;
            }
            if found.len() == limit {
                return (found, Some(position));
            }
            found.push(factor);
        }
        (found, None)
    }

    /// The factor of an activity for a region, year, unit and calorific basis. The year defaults to
    /// the latest one the region has; the region must be given when the activity has several; an
    /// energy factor defaults to gross calorific value (what fuel bills and EPA's HHV factors use).
    pub fn select(
        &self,
        selector: &Selector<'_>,
        unit: &'static Unit,
    ) -> Result<&Factor, SelectError> {
        let unit_type = unit.unit_type;
        let of_activity: Vec<&Factor> = self
            .by_activity
            .get(selector.activity_id)
            .map(|positions| positions.iter().map(|&i| &self.factors[i]).collect())
            .unwrap_or_default();
        if of_activity.is_empty() {
            return Err(SelectError::UnknownActivity(amanar_http::quoted(
                selector.activity_id,
            )));
        }
        let listed = |values: &mut Vec<String>| {
            values.sort();
            values.dedup();
            values.join(", ")
        };
        let in_region: Vec<&Factor> = match selector.region {
            Some(region) => of_activity
                .iter()
                .copied()
                .filter(|f| f.region.eq_ignore_ascii_case(region))
                .collect(),
            None => {
                let mut regions: Vec<String> =
                    of_activity.iter().map(|f| f.region.clone()).collect();
                if listed(&mut regions).contains(", ") {
                    return Err(SelectError::Ambiguous {
                        field: "region",
                        message: format!(
                            "the activity has factors for several regions; give one of: {}",
                            regions.join(", ")
                        ),
                    });
                }
                of_activity.clone()
            }
        };
        if in_region.is_empty() {
            let mut regions: Vec<String> = of_activity.iter().map(|f| f.region.clone()).collect();
            return Err(SelectError::NoneFor {
                field: "region",
                available: format!("regions {}", listed(&mut regions)),
            });
        }
        let year = match selector.year {
            Some(year) => year,
            None => in_region.iter().map(|f| f.year).max().unwrap_or_default(),
        };
        let in_year: Vec<&Factor> = in_region
            .iter()
            .copied()
            .filter(|f| f.year == year)
            .collect();
        if in_year.is_empty() {
            let mut years: Vec<String> = in_region.iter().map(|f| f.year.to_string()).collect();
            return Err(SelectError::NoneFor {
                field: "year",
                available: format!("years {}", listed(&mut years)),
            });
        }
        let of_type: Vec<&Factor> = in_year
            .iter()
            .copied()
            .filter(|f| f.unit.unit_type == unit_type)
            .collect();
        if of_type.is_empty() {
            let mut accepted: Vec<String> = in_year
                .iter()
                .flat_map(|f| f.unit.unit_type.units().map(|u| u.symbol.to_owned()))
                .collect();
            return Err(SelectError::WrongUnitType {
                unit_type,
                accepted: listed(&mut accepted),
            });
        }
        let basis = selector.calorific_basis.unwrap_or(CalorificBasis::Gross);
        let on_basis: Vec<&Factor> = of_type
            .iter()
            .copied()
            .filter(|f| f.calorific_basis.is_none_or(|b| b == basis))
            .collect();
        // The same factor is often published per km and per mile: prefer the caller's own unit,
        // then the first listed.
        on_basis
            .iter()
            .find(|f| std::ptr::eq(f.unit, unit))
            .or(on_basis.first())
            .copied()
            .ok_or(SelectError::NoneFor {
                field: "calorificBasis",
                available: format!("no factor on a {} calorific basis", basis.as_str()),
            })
    }
}
