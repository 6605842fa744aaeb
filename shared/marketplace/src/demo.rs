//! The demo catalogue: real registry projects and serial blocks, listed at stated demo prices,
//! so that a new user can browse a marketplace a minute after starting the local runtime
//! (`amanar-local --demo`).
//!
//! The rows come from `data/demo-catalogue.csv`, derived by `infra/data/build_offsets.py` from
//! the OffsetsDB registry samples (DATA-SOURCES.md §4): each project's name, registry id,
//! country, OffsetsDB type and category, protocol, and published serial blocks with their vintage
//! and quantity. The prices are the script's stated figures per category, not market data. The
//! blocks were published by their registries (many of them retired there since): here they are
//! issued into a demo organisation's inventory, through the same checks and ledger as any
//! issuance, so that lookups and listings show real serial formats. Seeding is idempotent: a
//! second run finds every project, issuance and listing made and changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use amanar_core::table::{Table, TableError};
use chrono::{DateTime, NaiveDate, Utc};

use crate::issuance::{self, BufferPolicy, IssueRequest, ProjectFacts};
use crate::ledger::{Ledger, LedgerError};
use crate::listings::{Listings, NewListing};
use crate::money::Money;
use crate::projects::{IssuanceType, Mechanism, Project, ProjectError, ProjectFields, Projects};
use crate::serial::{Standard, Vintage};
use crate::taxonomy;

const ROWS: &str = include_str!("../data/demo-catalogue.csv");

/// Who owns the demo projects (an organisation that exists only as their owner).
pub const DEMO_OWNER: &str = "ORG#org_demo";
/// Who the demo's records name as their actor.
const DEMO_ACTOR: &str = "system:demo-catalogue";

/// One serial block of the demo catalogue, as `data/demo-catalogue.csv` holds it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Row {
    pub standard: Standard,
    /// The registry's project id.
    pub project: String,
    pub name: String,
    pub country: String,
    pub category: String,
    pub project_type: String,
    pub protocol: String,
    pub mechanism: Mechanism,
    /// A year, or Verra's `start/end` vintage period.
    pub vintage: String,
    pub serial: String,
    pub quantity: u64,
    /// The demo unit price in USD.
    pub price: String,
}

/// The demo catalogue's rows.
pub fn rows() -> Result<Vec<Row>, DemoError> {
    csv::Reader::from_reader(ROWS.as_bytes())
        .deserialize::<Row>()
        .enumerate()
        .map(|(n, row)| {
            row.map_err(|e| DemoError::Row {
                row: n + 2,
                reason: e.to_string(),
            })
        })
        .collect()
}

/// What a seeding made (or found made).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub projects: usize,
    pub issuances: usize,
    pub listings: usize,
    /// Blocks refused by the ledger (serials another issuance here claimed first).
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo catalogue row {row}: {reason}")]
    Row { row: usize, reason: String },
    #[error(transparent)]
    Table(#[from] TableError),
}

fn vintage(text: &str) -> Option<Vintage> {
    match text.split_once('/') {
        Some((start, end)) => Some(Vintage::Period {
            start: NaiveDate::parse_from_str(start, "%Y-%m-%d").ok()?,
            end: NaiveDate::parse_from_str(end, "%Y-%m-%d").ok()?,
        }),
        None => text.parse().ok().map(Vintage::Year),
    }
}

/// A stable id from a registry's text (`ACR-US-869-2022-2145-1031513 to 1032509`).
fn id_of(prefix: &str, text: &str) -> String {
    let tail: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut id = format!("{prefix}_demo_{tail}");
    id.truncate(120);
    id
}

fn project_of(rows: &[&Row], now: DateTime<Utc>) -> Project {
    let first = rows[0];
    let type_name = taxonomy::project_type(&first.project_type)
        .map(|t| t.name)
        .unwrap_or(first.project_type.as_str());
    Project::approved_elsewhere(
        id_of("prj", &first.project),
        DEMO_OWNER.into(),
        ProjectFields {
            name: first.name.clone(),
            description: format!(
                "{type_name} project registered as {} (demo catalogue: the project and its serial blocks are real, from the OffsetsDB registry samples; the prices are illustrative).",
                first.project
            ),
            category: first.category.clone(),
            project_type: first.project_type.clone(),
            protocol: (!first.protocol.is_empty()).then(|| first.protocol.clone()),
            standard: first.standard,
            mechanism: first.mechanism,
            issuance_type: IssuanceType::ExPost,
            country: first.country.clone(),
            location: None,
            sdgs: Vec::new(),
            labels: Vec::new(),
            permanence_years: None,
            registry_project_id: Some(first.project.clone()),
            registry_url: None,
        },
        DEMO_ACTOR.into(),
        now,
    )
}

/// Loads the demo catalogue into the table.
pub async fn seed(
    table: Arc<dyn Table>,
    buffer: &BufferPolicy,
    now: DateTime<Utc>,
) -> Result<Seeded, DemoError> {
    let rows = rows()?;
    let mut by_project: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        by_project.entry(&row.project).or_default().push(row);
    }
    let projects = Projects::new(table.clone());
    let ledger = Ledger::new(table.clone());
    let listings = Listings::new(table.clone());
    let mut seeded = Seeded::default();
    for (registry_id, blocks) in by_project {
        let project = project_of(&blocks, now);
        match projects
            .import_approved(
                &project,
                "Demo catalogue: verified at its registry, not here",
            )
            .await
        {
            Ok(()) | Err(ProjectError::Table(TableError::ConditionFailed { .. })) => {}
            Err(ProjectError::Table(e)) => return Err(e.into()),
            Err(e) => {
                return Err(DemoError::Row {
                    row: 0,
                    reason: format!("{registry_id}: {e}"),
                });
            }
        }
        seeded.projects += 1;
        for row in blocks {
            let bad = |reason: String| DemoError::Row {
                row: 0,
                reason: format!("{}: {reason}", row.serial),
            };
            let vintage = vintage(&row.vintage).ok_or_else(|| bad("vintage".into()))?;
            let facts = ProjectFacts {
                id: project.id.clone(),
                standard: row.standard,
                registry_project_id: Some(row.project.clone()),
                category: row.category.clone(),
                owner: DEMO_OWNER.into(),
            };
            let ask = IssueRequest {
                vintage,
                quantity: row.quantity,
                serial_block: Some(row.serial.clone()),
            };
            let issuance_id = id_of("iss", &row.serial);
            let new = issuance::prepare(&facts, &ask, buffer, &issuance_id, DEMO_ACTOR, now)
                .map_err(|e| bad(e.to_string()))?;

            let issued = match ledger.issue(new).await {
                Ok(issued) => issued,
                // Made by an earlier run under another buffer policy: keep what was made.
                Err(LedgerError::AlreadyIssued(_)) => match ledger.issuance(&issuance_id).await {
                    Ok(Some(issued)) => issued,
                    Ok(None) => return Err(bad("issuance vanished".into())),
                    Err(LedgerError::Table(e)) => return Err(e.into()),
                    Err(e) => return Err(bad(e.to_string())),
                },
                Err(LedgerError::Overlap { .. }) => {
                    seeded.skipped += 1;
                    continue;
                }
                Err(LedgerError::Table(e)) => return Err(e.into()),
                Err(e) => return Err(bad(e.to_string())),
            };
            seeded.issuances += 1;
            let for_sale = issued.quantity - issued.buffer;
            let unit_price = Money::parse(&row.price, "USD").map_err(|e| bad(e.to_string()))?;
            let listing = NewListing {
                id: id_of("lst", &row.serial),
                project_id: project.id.clone(),
                issuance_id: issued.id.clone(),
                seller: DEMO_OWNER.into(),
                standard: issued.standard,
                vintage: issued.vintage,
                quantity: for_sale,
                unit_price,
                actor: DEMO_ACTOR.into(),
                now,
            };
            if for_sale > 0 {
                listings
                    .create(listing)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                seeded.listings += 1;
            }
        }
    }
    Ok(seeded)
}
