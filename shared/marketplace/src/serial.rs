//! Registry serial numbers: parsing each registry's format into one [`SerialBlock`], and writing a
//! sub-range back in the same format.
//!
//! A serial block names a contiguous range of credits inside a *namespace*: the set of serials in
//! which a number means one credit. Verra numbers its credits across the whole registry, so its
//! namespace is the registry. Every other registry here restarts at 1 (or 0) for each issuance, so
//! the namespace is the serial with its range taken out. This matters for Puro and Isometric in
//! particular: their ranges are unique only within an issuance. Two blocks overlap only when they
//! share a namespace and a number.
//!
//! Every field must be written as the registry writes it (upper case, numbers without leading
//! zeros), so one credit has exactly one spelling and an alias cannot open a second namespace.
//! ART TREES is the exception to "one namespace per issuance": it numbers a programme's credits
//! across its issuances, so an `ART-` programme is one namespace.
//!
//! The formats. The examples are real serials from OffsetsDB's registry samples (the
//! derived `data/serials.csv` holds 211 of them, see DATA-SOURCES.md), except the three marked:
//!
//! | standard | form | example |
//! |---|---|---|
//! | `VCS` | `batch-first-last-VCS-VCU-n-VER-CC-scope-project-DDMMYYYY-DDMMYYYY-flag` (13 fields) | `19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1` |
//! | `VCS` (older) | `batch-first-last-VCU-n-REG-CC-scope-project-DDMMYYYY-DDMMYYYY-flag` (12 fields) | `5185-226383355-226383364-VCU-016-APX-IN-1-709-01012011-31122011-0` (constructed in this shape; no sample holds one) |
//! | `GOLD_STANDARD` | `GS1-1-CC-GSproject-n-vintage-issuance-first-last` | `GS1-1-UG-GS11236-16-2024-30307-1-19149` |
//! | `ACR` | `ACR-CC-project-vintage-issuance-first to last` | `ACR-FR-1129-2025-2917-30932 to 35143` |
//! | `CAR` | `CAR-kind-CC-project-type-n-state-vintage-issuance-first to last` | `CAR-1-US-1335-31-983-KS-2025-9205-1 to 5000` |
//! | `ART` | `ART-CC-program-vintage-issuance-first to last` (`FCPF-` for FCPF programmes) | `ART-GY-102-2016-9-1401 to 1408` |
//! | `CERCARBONO` | `CDC_project_..._[vintage][_BF]` or `..._BFC_vintage`, then ` first to last` | `CDC_1_1_1_321_14_1_2009 4426 to 4971` |
//! | `PURO`, `ISOMETRIC` | `issuance:first-last` (this platform's convention: their registries name credits by issuance id and count) | `iss_1KP6EDZ8K1S036PY:1-2765370` (a real Isometric issuance id and its kilograms) |
//! | `NATIVE` | `AMC-issuance-first-last` (this platform's own) | `AMC-01JD3Q5R7Y8Z9A0B1C2D3E4F5G-1-1000` |

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The standard (registry or programme) a project is certified under; `NATIVE` for credits issued
/// on this platform.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Standard {
    Vcs,
    GoldStandard,
    Acr,
    Car,
    Art,
    Puro,
    Isometric,
    Cercarbono,
    Native,
}

impl Standard {
    pub const ALL: [Standard; 9] = [
        Standard::Vcs,
        Standard::GoldStandard,
        Standard::Acr,
        Standard::Car,
        Standard::Art,
        Standard::Puro,
        Standard::Isometric,
        Standard::Cercarbono,
        Standard::Native,
    ];

    /// The name clients use (`GOLD_STANDARD`).
    pub fn as_str(self) -> &'static str {
        match self {
            Standard::Vcs => "VCS",
            Standard::GoldStandard => "GOLD_STANDARD",
            Standard::Acr => "ACR",
            Standard::Car => "CAR",
            Standard::Art => "ART",
            Standard::Puro => "PURO",
            Standard::Isometric => "ISOMETRIC",
            Standard::Cercarbono => "CERCARBONO",
            Standard::Native => "NATIVE",
        }
    }

    pub fn parse(text: &str) -> Option<Standard> {
        Standard::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Standard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vintage a serial states: a year, or a monitoring period (Verra writes both dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Vintage {
    Year(i32),
    Period { start: NaiveDate, end: NaiveDate },
}

impl Vintage {
    /// The vintage's year: the year itself, or the year a monitoring period ends in.
    pub fn year(&self) -> i32 {
        use chrono::Datelike;
        match self {
            Vintage::Year(y) => *y,
            Vintage::Period { end, .. } => end.year(),
        }
    }

    /// Whether a serial's vintage agrees with the vintage an issuance declares. Two years or two
    /// periods must be equal; a year agrees with a period that starts or ends in it.
    pub fn agrees_with(&self, declared: &Vintage) -> bool {
        use chrono::Datelike;
        match (self, declared) {
            (Vintage::Year(a), Vintage::Year(b)) => a == b,
            (Vintage::Period { .. }, Vintage::Period { .. }) => self == declared,
            (Vintage::Year(y), Vintage::Period { start, end })
            | (Vintage::Period { start, end }, Vintage::Year(y)) => {
                start.year() == *y || end.year() == *y
            }
        }
    }
}

impl fmt::Display for Vintage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Vintage::Year(y) => write!(f, "{y}"),
            Vintage::Period { start, end } => write!(f, "{start}/{end}"),
        }
    }
}

/// An inclusive range of serial numbers, never empty (`first <= last`): the only ways to make one
/// are [`Range::new`] and deserialising, which checks the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RangeFields")]
pub struct Range {
    first: u64,
    last: u64,
}

#[derive(Deserialize)]
struct RangeFields {
    first: u64,
    last: u64,
}

impl TryFrom<RangeFields> for Range {
    type Error = String;
    fn try_from(f: RangeFields) -> Result<Self, String> {
        Range::new(f.first, f.last).ok_or_else(|| format!("empty range {}-{}", f.first, f.last))
    }
}

impl Range {
    /// `None` when `last < first`, or when `last` is `u64::MAX` (so `last + 1` never overflows).
    pub fn new(first: u64, last: u64) -> Option<Range> {
        (first <= last && last < u64::MAX).then_some(Range { first, last })
    }

    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn last(&self) -> u64 {
        self.last
    }

    /// How many credits the range holds (`last - first + 1`).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// A range is never empty; this exists for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    pub fn contains(&self, number: u64) -> bool {
        self.first <= number && number <= self.last
    }

    /// The first `n` credits (`1 <= n <= len`).
    pub fn head(&self, n: u64) -> Option<Range> {
        (1..=self.len()).contains(&n).then(|| Range {
            first: self.first,
            last: self.first + n - 1,
        })
    }

    /// The last `n` credits (`1 <= n <= len`).
    pub fn tail(&self, n: u64) -> Option<Range> {
        (1..=self.len()).contains(&n).then(|| Range {
            first: self.last + 1 - n,
            last: self.last,
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// How a block is written back, for a sub-range of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "camelCase")]
pub enum Form {
    /// `{batch}-{first}-{last}-{rest}`.
    Verra { batch: String, rest: String },
    /// `{prefix}-{first}-{last}`.
    Dashed { prefix: String },
    /// `{prefix}-{first} to {last}`.
    To { prefix: String },
    /// `{prefix} {first} to {last}`.
    Spaced { prefix: String },
    /// `{prefix}:{first}-{last}`.
    Colon { prefix: String },
}

/// One parsed serial block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SerialBlock {
    pub standard: Standard,
    /// Where a number names one credit: blocks overlap only within one namespace.
    pub namespace: String,
    pub range: Range,
    /// The registry's project id the serial names, normalised to the registry's own prefix
    /// (`1340` in a Verra serial is `VCS1340`, `FCPF-CI-130` is `ART130`, `CDC_1_...` is `CDC-1`),
    /// when the format carries one.
    pub project: Option<String>,
    pub vintage: Option<Vintage>,
    /// ISO 3166-1 alpha-2 country, when the format carries one.
    pub country: Option<String>,
    /// A buffer-pool block (Cercarbono marks them `_BF` or `_BFC_<year>`).
    pub buffer: bool,
    pub form: Form,
}

impl SerialBlock {
    pub fn quantity(&self) -> u64 {
        self.range.len()
    }

    /// The serial of a sub-range of this block, in the registry's format.
    pub fn render(&self, range: Range) -> String {
        let (first, last) = (range.first, range.last);
        match &self.form {
            Form::Verra { batch, rest } => format!("{batch}-{first}-{last}-{rest}"),
            Form::Dashed { prefix } => format!("{prefix}-{first}-{last}"),
            Form::To { prefix } => format!("{prefix}-{first} to {last}"),
            Form::Spaced { prefix } => format!("{prefix} {first} to {last}"),
            Form::Colon { prefix } => format!("{prefix}:{first}-{last}"),
        }
    }
}

/// Why a serial was refused, naming the part at fault (the API's 422 says which).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("serial {part}: {reason}")]
pub struct SerialError {
    pub part: &'static str,
    pub reason: String,
}

fn refuse(part: &'static str, reason: impl Into<String>) -> SerialError {
    SerialError {
        part,
        reason: reason.into(),
    }
}

/// The prefix of the platform's own serials.
pub const NATIVE_PREFIX: &str = "AMC";

/// The longest serial accepted (the real ones are under 100 characters).
pub const MAX_SERIAL_LEN: usize = 200;

/// Parses a serial block in the format of `standard`.
pub fn parse(standard: Standard, text: &str) -> Result<SerialBlock, SerialError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(refuse("serial", "is empty"));
    }
    if text.len() > MAX_SERIAL_LEN || !text.is_ascii() || text.chars().any(|c| c.is_control()) {
        return Err(refuse(
            "serial",
            format!("must be printable ASCII of at most {MAX_SERIAL_LEN} characters"),
        ));
    }
    match standard {
        Standard::Vcs => verra(text),
        Standard::GoldStandard => gold_standard(text),
        Standard::Acr => dashed_to(standard, "ACR", text),
        Standard::Car => dashed_to(standard, "CAR", text),
        Standard::Art => dashed_to(standard, "ART", text),
        Standard::Cercarbono => cercarbono(text),
        Standard::Puro | Standard::Isometric => within_issuance(standard, text),
        Standard::Native => native(text),
    }
}

/// A number as registries write it: at most 18 digits, without leading zeros. One credit has one
/// spelling, so `02917` cannot stand for issuance `2917` in another namespace.
fn number(part: &'static str, text: &str) -> Result<u64, SerialError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 18 {
        return Err(refuse(
            part,
            format!("{text:?} is not a number of at most 18 digits"),
        ));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(refuse(
            part,
            format!("{text:?} has a leading zero; write the number as the registry does"),
        ));
    }
    // At most 18 digits always fit a u64 (and leave room for `last + 1`).
    Ok(text.parse().expect("18 digits fit a u64"))
}

fn range(first: &str, last: &str) -> Result<Range, SerialError> {
    let first = number("start", first)?;
    let last = number("end", last)?;
    Range::new(first, last).ok_or_else(|| {
        refuse(
            "end",
            format!("{last} is below the start {first}: a block runs from its start up to its end"),
        )
    })
}

/// Any other field of a serial: upper-case letters and digits, a number without leading zeros.
/// With every field in one spelling, a serial's text (and so its namespace) is canonical.
fn token(part: &'static str, text: &str) -> Result<(), SerialError> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(refuse(
            part,
            format!("{text:?} is not a field of upper-case letters and digits"),
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        number(part, text)?;
    }
    Ok(())
}

fn year(part: &'static str, text: &str) -> Result<i32, SerialError> {
    match text.parse::<i32>() {
        Ok(y) if text.len() == 4 && (1990..=2100).contains(&y) => Ok(y),
        _ => Err(refuse(part, format!("{text:?} is not a year"))),
    }
}

fn country(part: &'static str, text: &str) -> Result<String, SerialError> {
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_owned())
    } else {
        Err(refuse(
            part,
            format!("{text:?} is not an ISO 3166-1 alpha-2 code"),
        ))
    }
}

fn verra_date(part: &'static str, text: &str) -> Result<NaiveDate, SerialError> {
    NaiveDate::parse_from_str(text, "%d%m%Y")
        .ok()
        .filter(|_| text.len() == 8)
        .ok_or_else(|| refuse(part, format!("{text:?} is not a date written DDMMYYYY")))
}

fn verra(text: &str) -> Result<SerialBlock, SerialError> {
    let fields: Vec<&str> = text.split('-').collect();
    // The 13-field form names the programme (`VCS-VCU-n-VER`); the older 12-field form names the
    // unit and the registry that issued it (`VCU-n-APX`).
    let (country_at, kind_ok) = match fields.len() {
        13 => (7, fields[3] == "VCS" && fields[4] == "VCU"),
        12 => (6, fields[3] == "VCU"),
        n => {
            return Err(refuse(
                "serial",
                format!(
                    "a Verra serial has 13 dash-separated fields (or 12 before 2013), this has {n}"
                ),
            ));
        }
    };
    if !kind_ok {
        return Err(refuse("unit", "a Verra serial names the unit VCU"));
    }
    number("batch", fields[0])?;
    // Verra's namespace is the registry, whatever the middle fields say, so they only need to be
    // well formed (the older form's registry code is fixed-width: `016`).
    for field in fields[3..country_at]
        .iter()
        .chain([&fields[country_at + 1], &fields[fields.len() - 1]])
    {
        if field.is_empty()
            || !field
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(refuse(
                "unit",
                format!("{field:?} is not a field of upper-case letters and digits"),
            ));
        }
    }
    let range = range(fields[1], fields[2])?;
    let country = country("country", fields[country_at])?;
    let project = number("project", fields[country_at + 2])?;
    let start = verra_date("vintage start", fields[country_at + 3])?;
    let end = verra_date("vintage end", fields[country_at + 4])?;
    if end < start {
        return Err(refuse("vintage end", "is before the vintage start"));
    }
    Ok(SerialBlock {
        standard: Standard::Vcs,
        namespace: "VCS".into(),
        range,
        project: Some(format!("VCS{project}")),
        vintage: Some(Vintage::Period { start, end }),
        country: Some(country),
        buffer: false,
        form: Form::Verra {
            batch: fields[0].into(),
            rest: fields[3..].join("-"),
        },
    })
}

fn gold_standard(text: &str) -> Result<SerialBlock, SerialError> {
    let fields: Vec<&str> = text.split('-').collect();
    if fields.len() != 9 || fields[0] != "GS1" {
        return Err(refuse(
            "serial",
            "a Gold Standard serial has 9 dash-separated fields: GS1-1-CC-GSproject-n-vintage-issuance-start-end",
        ));
    }
    let country = country("country", fields[2])?;
    let project = fields[3]
        .strip_prefix("GS")
        .ok_or_else(|| refuse("project", "a Gold Standard project id starts with GS"))?;
    number("project", project)?;
    token("serial", fields[1])?;
    token("product", fields[4])?;
    let vintage = year("vintage", fields[5])?;
    number("issuance", fields[6])?;
    let range = range(fields[7], fields[8])?;
    let prefix = fields[..7].join("-");
    Ok(SerialBlock {
        standard: Standard::GoldStandard,
        namespace: format!("GOLD_STANDARD#{prefix}"),
        range,
        project: Some(format!("GS{project}")),
        vintage: Some(Vintage::Year(vintage)),
        country: Some(country),
        buffer: false,
        form: Form::Dashed { prefix },
    })
}

/// ACR, CAR and ART: `<prefix>-<first> to <last>`, where the prefix names the issuance.
fn dashed_to(standard: Standard, program: &str, text: &str) -> Result<SerialBlock, SerialError> {
    let shape = || {
        refuse(
            "serial",
            format!("a {standard} serial ends with \"-<start> to <end>\""),
        )
    };
    let (head, last) = text.split_once(" to ").ok_or_else(shape)?;
    let (prefix, first) = head.rsplit_once('-').ok_or_else(shape)?;
    let range = range(first, last.trim())?;
    let fields: Vec<&str> = prefix.split('-').collect();
    // Positions of the country, project number, vintage and issuance in the prefix.
    let (country_at, project_at, vintage_at, issuance_at) = match standard {
        Standard::Acr => (1, 2, 3, 4),
        Standard::Car => (2, 3, 7, 8),
        _ => (1, 2, 3, 4),
    };
    let expected = issuance_at + 1;
    let prefixes: &[&str] = if standard == Standard::Art {
        &["ART", "FCPF"]
    } else {
        &[program]
    };
    if fields.len() != expected || !prefixes.contains(&fields[0]) {
        return Err(refuse(
            "serial",
            format!(
                "a {standard} serial starts with {} and has {} dash-separated fields before the range",
                prefixes.join(" or "),
                expected
            ),
        ));
    }
    let country = country("country", fields[country_at])?;
    let project = number("project", fields[project_at])?;
    let vintage = year("vintage", fields[vintage_at])?;
    number("issuance", fields[issuance_at])?;
    for (at, field) in fields.iter().enumerate().skip(1) {
        if ![country_at, project_at, vintage_at, issuance_at].contains(&at) {
            token("serial", field)?;
        }
    }
    // ART TREES numbers a programme's credits across its issuances (ART102: 1-1408 in 2016,
    // 2,750,301-3,605,000 in 2021), so an ART programme is one namespace. FCPF programmes, ACR
    // and CAR restart at 1 for each issuance.
    let namespace = if fields[0] == "ART" {
        format!("ART#{}", fields[..=project_at].join("-"))
    } else {
        format!("{standard}#{prefix}")
    };
    Ok(SerialBlock {
        standard,
        namespace,
        range,
        project: Some(format!("{program}{project}")),
        vintage: Some(Vintage::Year(vintage)),
        country: Some(country),
        buffer: false,
        form: Form::To {
            prefix: prefix.into(),
        },
    })
}

fn cercarbono(text: &str) -> Result<SerialBlock, SerialError> {
    let shape = || {
        refuse(
            "serial",
            "a Cercarbono block is written \"CDC_<project>_... <start> to <end>\"",
        )
    };
    let (id, rest) = text.split_once(' ').ok_or_else(shape)?;
    let (first, last) = rest.split_once(" to ").ok_or_else(shape)?;
    let range = range(first, last)?;
    let fields: Vec<&str> = id.split('_').collect();
    if fields.len() < 3 || fields[0] != "CDC" {
        return Err(refuse(
            "serial",
            "a Cercarbono serial starts with CDC_<project>_",
        ));
    }
    let project = number("project", fields[1])?;
    for field in &fields[2..] {
        token("serial", field)?;
    }
    // EcoRegistry marks buffer-pool blocks `_BF` (last) or `_BFC_<year>` (before the vintage);
    // its own `is_buffer` column agrees with these tokens on every sample row.
    let buffer = fields[2..].iter().any(|f| *f == "BF" || *f == "BFC");
    // A trailing year names the vintage of a block split out of a longer verification period.
    let vintage = fields
        .iter()
        .rev()
        .find(|f| **f != "BF")
        .filter(|f| f.len() == 4)
        .and_then(|f| year("vintage", f).ok())
        .map(Vintage::Year);
    Ok(SerialBlock {
        standard: Standard::Cercarbono,
        namespace: format!("CERCARBONO#{id}"),
        range,
        project: Some(format!("CDC-{project}")),
        vintage,
        country: None,
        buffer,
        form: Form::Spaced { prefix: id.into() },
    })
}

fn issuance_id(part: &'static str, text: &str) -> Result<(), SerialError> {
    if text.is_empty()
        || text.len() > 64
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(refuse(
            part,
            format!("{text:?} is not an issuance id (letters, digits, _ and -)"),
        ));
    }
    Ok(())
}

/// Puro and Isometric: ranges are unique only within an issuance, so the issuance id is part of
/// the serial: `<issuance>:<first>-<last>`.
fn within_issuance(standard: Standard, text: &str) -> Result<SerialBlock, SerialError> {
    let (issuance, rest) = text.split_once(':').ok_or_else(|| {
        refuse(
            "serial",
            format!(
                "a {standard} block is written \"<issuance>:<start>-<end>\": its numbers are unique only within the issuance"
            ),
        )
    })?;
    issuance_id("issuance", issuance)?;
    let (first, last) = rest
        .split_once('-')
        .ok_or_else(|| refuse("serial", "the range is written <start>-<end>"))?;
    Ok(SerialBlock {
        standard,
        namespace: format!("{standard}#{issuance}"),
        range: range(first, last)?,
        project: None,
        vintage: None,
        country: None,
        buffer: false,
        form: Form::Colon {
            prefix: issuance.into(),
        },
    })
}

fn native(text: &str) -> Result<SerialBlock, SerialError> {
    let shape = || {
        refuse(
            "serial",
            format!("a native serial is written {NATIVE_PREFIX}-<issuance>-<start>-<end>"),
        )
    };
    let rest = text
        .strip_prefix(NATIVE_PREFIX)
        .and_then(|r| r.strip_prefix('-'))
        .ok_or_else(shape)?;
    // The range is the last two fields, so an issuance id may hold dashes.
    let mut fields = rest.rsplitn(3, '-');
    let (last, first) = (
        fields.next().ok_or_else(shape)?,
        fields.next().ok_or_else(shape)?,
    );
    let issuance = fields.next().ok_or_else(shape)?;
    issuance_id("issuance", issuance)?;
    Ok(SerialBlock {
        standard: Standard::Native,
        namespace: format!("NATIVE#{issuance}"),
        range: range(first, last)?,
        project: None,
        vintage: None,
        country: None,
        buffer: false,
        form: Form::Dashed {
            prefix: format!("{NATIVE_PREFIX}-{issuance}"),
        },
    })
}

/// Whether two registry project ids name the same project: `1340`, `VCS1340` and `vcs-1340` do,
/// as do `GS11236` and `GLD11236` (OffsetsDB's prefix), but `CAR1340` and `VCS1340` do not. An id
/// is a letter prefix and a number; two numbers must be equal, and two prefixes (where both ids
/// have one) must name the same registry. Ids without a trailing number compare whole, ignoring
/// case.
pub fn same_project(a: &str, b: &str) -> bool {
    fn split(id: &str) -> Option<(String, &str)> {
        let id = id.trim();
        let digits_at = id
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_digit())
            .last()
            .map(|(i, _)| i)?;
        let prefix: String = id[..digits_at]
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let prefix = match prefix.as_str() {
            "GLD" => "GS".to_owned(),
            "VERRA" => "VCS".to_owned(),
            _ => prefix,
        };
        Some((prefix, id[digits_at..].trim_start_matches('0')))
    }
    match (split(a), split(b)) {
        (Some((pa, na)), Some((pb, nb))) => {
            na == nb && (pa.is_empty() || pb.is_empty() || pa == pb)
        }
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verra_serial_names_its_range_project_and_vintage_and_a_sub_range_keeps_the_format() {
        let s = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1";
        let block = parse(Standard::Vcs, s).unwrap();
        assert_eq!(block.range, Range::new(941467007, 941467431).unwrap());
        assert_eq!(block.quantity(), 425);
        assert_eq!(block.project.as_deref(), Some("VCS1340"));
        assert_eq!(block.country.as_deref(), Some("ET"));
        assert_eq!(block.namespace, "VCS");
        assert_eq!(block.render(block.range), s);
        assert_eq!(
            block.render(Range::new(941467100, 941467199).unwrap()),
            "19385-941467100-941467199-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
        );
    }

    #[test]
    fn the_older_twelve_field_verra_form_parses() {
        let block = parse(
            Standard::Vcs,
            "5185-226383355-226383364-VCU-016-APX-IN-1-709-01012011-31122011-0",
        )
        .unwrap();
        assert_eq!(block.quantity(), 10);
        assert_eq!(block.project.as_deref(), Some("VCS709"));
        assert_eq!(block.country.as_deref(), Some("IN"));
        assert_eq!(
            block.namespace, "VCS",
            "one namespace with the 13-field form"
        );
        assert_eq!(
            block.render(block.range),
            "5185-226383355-226383364-VCU-016-APX-IN-1-709-01012011-31122011-0"
        );
        assert_eq!(
            block.vintage,
            Some(Vintage::Period {
                start: NaiveDate::from_ymd_opt(2011, 1, 1).unwrap(),
                end: NaiveDate::from_ymd_opt(2011, 12, 31).unwrap()
            })
        );
    }

    #[test]
    fn each_refusal_names_the_part_at_fault() {
        let cases = [
            (
                Standard::Vcs,
                "19385-941467431-941467007-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
                "end",
            ),
            (
                Standard::Vcs,
                "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020",
                "serial",
            ),
            (
                Standard::Vcs,
                "19385-941467007-941467431-VCS-VCU-1507-VER-Ethiopia-14-1340-01012020-31122020-1",
                "country",
            ),
            (
                Standard::Vcs,
                "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-32012020-31122020-1",
                "vintage start",
            ),
            (
                Standard::GoldStandard,
                "GS1-1-UG-GS11236-16-24-30307-1-19149",
                "vintage",
            ),
            (
                Standard::GoldStandard,
                "GS1-1-UG-11236-16-2024-30307-1-19149",
                "project",
            ),
            (Standard::Acr, "ACR-FR-1129-2025-2917-30932 to x", "end"),
            (
                Standard::Acr,
                "CAR-FR-1129-2025-2917-30932 to 35143",
                "serial",
            ),
            (
                Standard::Car,
                "CAR-1-US-1335-31-983-KS-2025-9205-1-5000",
                "serial",
            ),
            (Standard::Cercarbono, "CDC_x_1 1 to 5", "project"),
            (Standard::Puro, "1-100", "serial"),
            (Standard::Isometric, "iss 1:1-100", "issuance"),
            (Standard::Native, "AMC-01J-5-1", "end"),
            (Standard::Vcs, "", "serial"),
        ];
        for (standard, text, part) in cases {
            let error = parse(standard, text).expect_err(text);
            assert_eq!(error.part, part, "{text}: {error}");
        }
    }

    #[test]
    fn puro_and_isometric_ranges_are_unique_only_within_their_issuance() {
        let a = parse(Standard::Puro, "PURO-2024-001:1-100").unwrap();
        let b = parse(Standard::Puro, "PURO-2024-002:1-100").unwrap();
        assert_ne!(a.namespace, b.namespace);
        assert_eq!(a.range, b.range);
        let iso = parse(Standard::Isometric, "iss_1KP6EDZ8K1S036PY:1-2765370").unwrap();
        assert_eq!(iso.quantity(), 2_765_370);
        assert_eq!(
            iso.render(Range::new(5, 9).unwrap()),
            "iss_1KP6EDZ8K1S036PY:5-9"
        );
    }

    #[test]
    fn a_native_serial_reads_its_range_from_the_end_so_issuance_ids_may_hold_dashes() {
        let block = parse(Standard::Native, "AMC-iss-a-b-1-5").unwrap();
        assert_eq!(block.namespace, "NATIVE#iss-a-b");
        assert_eq!(block.range, Range::new(1, 5).unwrap());
        assert_eq!(block.render(block.range), "AMC-iss-a-b-1-5");
    }

    #[test]
    fn one_credit_has_one_spelling_so_an_alias_cannot_open_a_second_namespace() {
        let real = parse(Standard::Acr, "ACR-FR-1129-2025-2917-30932 to 35143").unwrap();
        for alias in [
            "ACR-FR-1129-2025-02917-30932 to 35143",
            "ACR-FR-01129-2025-2917-30932 to 35143",
            "ACR-FR-1129-2025-2917-030932 to 35143",
        ] {
            assert!(parse(Standard::Acr, alias).is_err(), "{alias}");
        }
        for alias in [
            "CAR-1-US-1335-31-983-ks-2025-9205-1 to 5000",
            "CAR-1-US-1335-031-983-KS-2025-9205-1 to 5000",
        ] {
            assert!(parse(Standard::Car, alias).is_err(), "{alias}");
        }
        assert!(
            parse(
                Standard::GoldStandard,
                "GS1-01-UG-GS11236-16-2024-30307-1-19149"
            )
            .is_err()
        );
        assert!(
            parse(
                Standard::GoldStandard,
                "GSX-1-UG-GS11236-16-2024-30307-1-19149"
            )
            .is_err()
        );
        assert!(parse(Standard::Cercarbono, "CDC_1_1_1_321_14_01_2009 1 to 5").is_err());
        assert!(parse(Standard::Cercarbono, "CDC_1_1__321_14_1_2009 1 to 5").is_err());
        assert_eq!(real.namespace, "ACR#ACR-FR-1129-2025-2917");
    }

    #[test]
    fn cercarbono_buffer_blocks_are_marked_bf_or_bfc_and_keep_their_vintage() {
        for (serial, vintage) in [
            ("CDC_1_1_1_321_14_1_2008_BF 1 to 226", Some(2008)),
            ("CDC_1_1_1_321_14_1_BF 1 to 11072", None),
            ("CDC_8_1_1_321_14_R1_XA_CO_1_2_BFC_2018 1 to 10", Some(2018)),
        ] {
            let block = parse(Standard::Cercarbono, serial).unwrap();
            assert!(block.buffer, "{serial}");
            assert_eq!(block.vintage, vintage.map(Vintage::Year), "{serial}");
        }
        let own = parse(Standard::Cercarbono, "CDC_1_1_1_321_14_1_2009 4426 to 4971").unwrap();
        assert!(!own.buffer);
        assert_eq!(own.vintage, Some(Vintage::Year(2009)));
        assert_eq!(own.quantity(), 546);
    }

    #[test]
    fn an_art_programme_is_one_namespace_and_an_fcpf_issuance_is_its_own() {
        let a = parse(Standard::Art, "ART-GY-102-2016-9-1 to 1400").unwrap();
        let b = parse(Standard::Art, "ART-GY-102-2021-11-2750301 to 2750400").unwrap();
        assert_eq!(a.namespace, "ART#ART-GY-102");
        assert_eq!(a.namespace, b.namespace);
        let c = parse(Standard::Art, "FCPF-CI-130-2023-20-1 to 46404").unwrap();
        let d = parse(Standard::Art, "FCPF-CI-130-2023-21-1 to 63392").unwrap();
        assert_ne!(
            c.namespace, d.namespace,
            "FCPF restarts at 1 for each issuance"
        );
        assert_eq!(c.project.as_deref(), Some("ART130"));
    }

    #[test]
    fn project_ids_compare_by_their_number() {
        assert!(same_project("VCS1340", "1340"));
        assert!(same_project("GS11236", "GLD11236"));
        assert!(same_project("CDC-1", "CDC-01"));
        assert!(!same_project("VCS1340", "VCS134"));
        assert!(
            !same_project("CAR1340", "VCS1340"),
            "another registry's project"
        );
        assert!(same_project("ACR1129", "1129"));
        assert!(same_project("prj_ABC", "PRJ_abc"));
    }

    #[test]
    fn a_year_agrees_with_a_period_that_starts_or_ends_in_it() {
        let period = Vintage::Period {
            start: NaiveDate::from_ymd_opt(2021, 11, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2022, 3, 31).unwrap(),
        };
        assert!(Vintage::Year(2021).agrees_with(&period));
        assert!(period.agrees_with(&Vintage::Year(2022)));
        assert!(!Vintage::Year(2020).agrees_with(&period));
        assert!(Vintage::Year(2020).agrees_with(&Vintage::Year(2020)));
    }
}
