//! Stored footprints: one per owner (a person or an organisation) and period, with its totals in
//! the table and its lines as a CSV file in the exports bucket.
//!
//! The invariant "an owner's current footprints never cover the same day twice" (no double
//! counting in history) lives in the table: each owner has one item listing its current periods,
//! and every new footprint rewrites it in the same transaction as the footprint itself, on the
//! condition that its version is the one read. A concurrent footprint of the same owner makes the
//! write fail and it is checked again against the new list. Correcting a footprint means replacing
//! it: the new one names the old in `replaces`, which may overlap it, and the old one is marked
//! `supersededBy` in the same transaction (it stays readable, out of the history).
//!
//! The lines file is written before the transaction, under the footprint's id, once the footprint
//! has passed the checks: a footprint that is committed always has its lines, a refused one leaves
//! none, and a commit that loses a race leaves at most an unreferenced file.

use std::time::Duration;

use amanar_core::table::{
    Condition, Index, Item, Query, SortKey, TableError, Update, VERSION, WriteOp, items,
};
use amanar_core::{BlobError, Bucket, Cursor, Ports, PresignedRequest, keys};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::calculation::Totals;
use crate::gwp::GwpSet;
use crate::period::Period;

/// Most current footprints one owner may have (about 30 years of monthly footprints).
pub const MAX_CURRENT: usize = 400;
/// How long a lines download URL stays valid.
pub const LINES_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// Attempts at a commit that lost a race with another footprint of the same owner.
const COMMIT_ATTEMPTS: usize = 5;

/// Who a footprint belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    User(String),
    Org(String),
}

impl Owner {
    /// The owner as keys name it.
    pub fn key(&self) -> String {
        match self {
            Owner::User(id) => keys::footprint_owner_user(id),
            Owner::Org(id) => keys::footprint_owner_org(id),
        }
    }
}

/// How a footprint was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Calculator {
    /// The personal calculator (home, travel, diet, spending).
    Personal,
    /// Activity entries sent to `POST /v1/footprints`.
    Entries,
    /// An activity CSV file (`POST /v1/orgs/{orgId}/activity-imports`).
    Import,
}

/// A footprint for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Footprint {
    pub id: String,
    /// The organisation whose footprint this is (organisational footprints).
    pub org_id: Option<String>,
    /// The person whose footprint this is (personal footprints).
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub period: Period,
    pub calculator: Calculator,
    /// The activity import that made it.
    pub import_id: Option<String>,
    /// The GWP set every line was restated on, when one was asked for.
    pub gwp_set: Option<GwpSet>,
    /// Fingerprint of the emission-factor library edition used (hex).
    pub library_version: String,
    pub totals: Totals,
    pub line_count: u64,
    /// The footprint this one corrected.
    pub replaces: Option<String>,
    /// The footprint that corrected this one (then this one is out of the history).
    pub superseded_by: Option<String>,
    /// User id, or `key:<keyId>` for an API key.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl Footprint {
    pub fn owner(&self) -> Owner {
        match (&self.org_id, &self.user_id) {
            (Some(org), _) => Owner::Org(org.clone()),
            (None, Some(user)) => Owner::User(user.clone()),
            (None, None) => Owner::User(String::new()),
        }
    }

    /// Where its lines are, in the exports bucket.
    pub fn lines_key(&self) -> String {
        lines_key(&self.id)
    }
}

pub fn lines_key(footprint_id: &str) -> String {
    format!("footprints/{footprint_id}/lines.csv")
}

/// One current period of an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentPeriod {
    #[serde(flatten)]
    period: Period,
    footprint_id: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Periods {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    periods: Vec<CurrentPeriod>,
}

/// Why a footprint was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(
        "the period {period} overlaps footprint {footprint_id} ({existing}); replace it instead"
    )]
    Overlap {
        period: Period,
        footprint_id: String,
        existing: Period,
    },
    #[error("footprint {} is not a current footprint of this owner, so it cannot be replaced", amanar_http::quoted(.0))]
    NotCurrent(String),
    #[error("an owner has at most {MAX_CURRENT} current footprints")]
    TooMany,
    #[error("a footprint with this id already exists")]
    AlreadyExists,
    /// One of the caller's own operations failed its condition (its position among them).
    #[error("condition {0} of the caller failed")]
    ConditionFailed(usize),
    #[error("too many concurrent changes to this owner's footprints; retry")]
    Busy,
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

fn footprint_item(footprint: &Footprint, owner: &Owner) -> Result<Item, TableError> {
    let mut item = items::with_key(&keys::footprint(&footprint.id), footprint)?;
    if footprint.superseded_by.is_none() {
        keys::footprint_in_history(&owner.key(), footprint.period.start, &footprint.id)
            .insert_into(&mut item);
    }
    Ok(item)
}

async fn read_periods(ports: &Ports, owner: &Owner) -> Result<Periods, TableError> {
    Ok(
        items::load(&*ports.table, &keys::footprint_periods(&owner.key()))
            .await?
            .unwrap_or_default(),
    )
}

/// The owner's current periods once `footprint` is added (and the one it replaces removed), or
/// why it cannot be.
fn with_footprint(
    current: &Periods,
    footprint: &Footprint,
) -> Result<Vec<CurrentPeriod>, SaveError> {
    let replaces = footprint.replaces.as_deref();
    if let Some(old) = replaces
        && !current.periods.iter().any(|p| p.footprint_id == old)
    {
        return Err(SaveError::NotCurrent(old.to_owned()));
    }
    let mut next: Vec<CurrentPeriod> = Vec::with_capacity(current.periods.len() + 1);
    for existing in &current.periods {
        if replaces == Some(existing.footprint_id.as_str()) {
            continue;
        }
        if existing.period.overlaps(&footprint.period) {
            return Err(SaveError::Overlap {
                period: footprint.period,
                footprint_id: existing.footprint_id.clone(),
                existing: existing.period,
            });
        }
        next.push(existing.clone());
    }
    if next.len() >= MAX_CURRENT {
        return Err(SaveError::TooMany);
    }
    next.push(CurrentPeriod {
        period: footprint.period,
        footprint_id: footprint.id.clone(),
    });
    next.sort_by_key(|a| a.period.start);
    Ok(next)
}

/// Saves a calculated footprint with its lines, checked against the owner's current periods.
/// `extra` operations (an import's status) commit in the same transaction; if one of them fails
/// its condition, nothing is saved and [`SaveError::ConditionFailed`] gives its position.
///
/// The checks run once before the lines file is written, so a refused footprint leaves no file,
/// and again under the transaction's condition, so a concurrent footprint cannot slip between.
pub async fn save(
    ports: &Ports,
    footprint: &Footprint,
    lines_csv: bytes::Bytes,
    extra: Vec<WriteOp>,
) -> Result<(), SaveError> {
    if get(ports, &footprint.id).await?.is_some() {
        return Err(SaveError::AlreadyExists);
    }
    let owner = footprint.owner();
    with_footprint(&read_periods(ports, &owner).await?, footprint)?;
    ports
        .blobs
        .put(
            Bucket::Exports,
            &footprint.lines_key(),
            lines_csv,
            "text/csv",
        )
        .await?;
    let periods_key = keys::footprint_periods(&owner.key());
    for _ in 0..COMMIT_ATTEMPTS {
        let current = read_periods(ports, &owner).await?;
        let next = with_footprint(&current, footprint)?;
        let mut ops = vec![
            WriteOp::put(footprint_item(footprint, &owner)?).when(Condition::NotExists),
            WriteOp::update(
                periods_key.clone(),
                Update::new()
                    .set(
                        "periods",
                        serde_json::to_value(&next).expect("periods serialise"),
                    )
                    .set(VERSION, current.version + 1),
            )
            .when(Condition::VersionIs(current.version)),
        ];
        if let Some(old) = &footprint.replaces {
            ops.push(
                WriteOp::update(
                    keys::footprint(old),
                    Update::new()
                        .set("supersededBy", footprint.id.clone())
                        .remove_index(Index::Gsi1),
                )
                .when(Condition::Exists),
            );
        }
        let own = ops.len();
        ops.extend(extra.iter().cloned());
        match ports.table.write(ops).await {
            Ok(()) => return Ok(()),
            Err(TableError::ConditionFailed { index: 0, .. }) => {
                return Err(SaveError::AlreadyExists);
            }
            Err(TableError::ConditionFailed { index, .. }) if index >= own => {
                return Err(SaveError::ConditionFailed(index - own));
            }
            // The owner's periods moved (or the replaced footprint vanished with them): check again.
            Err(TableError::ConditionFailed { .. } | TableError::TransactionConflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(SaveError::Busy)
}

pub async fn get(ports: &Ports, footprint_id: &str) -> Result<Option<Footprint>, TableError> {
    items::load(&*ports.table, &keys::footprint(footprint_id)).await
}

/// An owner's current footprints by period start, newest first unless `oldest_first`, optionally
/// only those starting between `from` and `to` (inclusive).
pub async fn history(
    ports: &Ports,
    owner: &Owner,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    oldest_first: bool,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<Footprint>, Option<Cursor>), TableError> {
    let mut query = Query::partition(Index::Gsi1, keys::footprints_of(&owner.key()))
        .limit(limit)
        .after(cursor);
    query = match (from, to) {
        (None, None) => query,
        (Some(from), None) => query.sort(SortKey::AtLeast(keys::footprints_from(from))),
        (None, Some(to)) => query.sort(SortKey::AtMost(keys::footprints_through(to))),
        (Some(from), Some(to)) => query.sort(SortKey::Between(
            keys::footprints_from(from),
            keys::footprints_through(to),
        )),
    };
    if !oldest_first {
        query = query.backward();
    }
    items::parse_page(ports.table.query(&query).await?)
}

/// A URL to download a footprint's lines.
pub async fn lines_url(
    ports: &Ports,
    footprint: &Footprint,
) -> Result<PresignedRequest, BlobError> {
    ports
        .blobs
        .presign_download(Bucket::Exports, &footprint.lines_key(), LINES_URL_TTL)
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use amanar_core::{Clock, SystemClock};
    use amanar_embedded::{EmbeddedStore, LocalBlobs};

    use super::*;

    fn ports() -> (Ports, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let blobs = LocalBlobs::new(dir.path().join("blobs"), "http://127.0.0.1:9", vec![7; 32]);
        let ports = Ports {
            table: Arc::new(store.table.clone()),
            queue: Arc::new(store.queue.clone()),
            blobs: Arc::new(blobs),
            clock: Arc::new(SystemClock),
        };
        (ports, dir)
    }

    fn footprint(id: &str, start: &str, end: &str) -> Footprint {
        Footprint {
            id: id.into(),
            org_id: Some("org_1".into()),
            user_id: None,
            name: None,
            period: Period::new(start.parse().unwrap(), end.parse().unwrap()).unwrap(),
            calculator: Calculator::Entries,
            import_id: None,
            gwp_set: None,
            library_version: "0".into(),
            totals: Totals::default(),
            line_count: 0,
            replaces: None,
            superseded_by: None,
            created_by: "usr_1".into(),
            created_at: SystemClock.now(),
        }
    }

    async fn save_one(ports: &Ports, footprint: &Footprint) -> Result<(), SaveError> {
        save(
            ports,
            footprint,
            bytes::Bytes::from_static(b"line\n"),
            vec![],
        )
        .await
    }

    #[tokio::test]
    async fn footprints_of_one_owner_never_cover_the_same_day_twice() {
        let (ports, _dir) = ports();
        save_one(&ports, &footprint("fp_2024", "2024-01-01", "2024-12-31"))
            .await
            .unwrap();
        save_one(&ports, &footprint("fp_2025", "2025-01-01", "2025-12-31"))
            .await
            .unwrap();
        let overlapping = footprint("fp_q4", "2025-10-01", "2025-12-31");
        assert!(matches!(
            save_one(&ports, &overlapping).await,
            Err(SaveError::Overlap { footprint_id, .. }) if footprint_id == "fp_2025"
        ));
        let owner = Owner::Org("org_1".into());
        let ids = |from: Option<&str>, to: Option<&str>| {
            let (ports, owner) = (ports.clone(), owner.clone());
            let from = from.map(|d| d.parse().unwrap());
            let to = to.map(|d| d.parse().unwrap());
            async move {
                history(&ports, &owner, from, to, false, 10, None)
                    .await
                    .unwrap()
                    .0
                    .into_iter()
                    .map(|f| f.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(None, None).await,
            ["fp_2025", "fp_2024"],
            "newest period first"
        );
        assert_eq!(ids(Some("2025-01-01"), None).await, ["fp_2025"]);
        assert_eq!(ids(None, Some("2024-06-30")).await, ["fp_2024"]);
        assert_eq!(
            ids(Some("2024-01-01"), Some("2025-01-01")).await,
            ["fp_2025", "fp_2024"]
        );
    }

    #[tokio::test]
    async fn a_refused_footprint_leaves_no_lines_file() {
        let (ports, _dir) = ports();
        save_one(&ports, &footprint("fp_a", "2025-01-01", "2025-12-31"))
            .await
            .unwrap();
        let refused = footprint("fp_b", "2025-03-01", "2025-03-31");
        assert!(save_one(&ports, &refused).await.is_err());
        assert!(
            ports
                .blobs
                .get(Bucket::Exports, &refused.lines_key())
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            save_one(&ports, &footprint("fp_a", "2026-01-01", "2026-12-31")).await,
            Err(SaveError::AlreadyExists)
        ));
    }

    #[tokio::test]
    async fn a_replacement_supersedes_the_old_footprint_and_takes_its_place_in_history() {
        let (ports, _dir) = ports();
        save_one(&ports, &footprint("fp_old", "2025-01-01", "2025-12-31"))
            .await
            .unwrap();
        let mut new = footprint("fp_new", "2025-01-01", "2025-12-31");
        new.replaces = Some("fp_old".into());
        save_one(&ports, &new).await.unwrap();
        let old = get(&ports, "fp_old").await.unwrap().unwrap();
        assert_eq!(old.superseded_by.as_deref(), Some("fp_new"));
        let (current, _) = history(
            &ports,
            &Owner::Org("org_1".into()),
            None,
            None,
            true,
            10,
            None,
        )
        .await
        .unwrap();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].id, "fp_new");
        // The old one is no longer current: it cannot be replaced again.
        let mut again = footprint("fp_again", "2025-01-01", "2025-12-31");
        again.replaces = Some("fp_old".into());
        assert!(matches!(
            save_one(&ports, &again).await,
            Err(SaveError::NotCurrent(_))
        ));
    }

    #[tokio::test]
    async fn concurrent_footprints_for_overlapping_periods_save_exactly_once() {
        let (ports, _dir) = ports();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let ports = ports.clone();
            tasks.push(tokio::spawn(async move {
                let f = footprint(&format!("fp_{i}"), "2025-01-01", "2025-06-30");
                save_one(&ports, &f).await
            }));
        }
        let mut saved = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => saved += 1,
                Err(SaveError::Overlap { .. } | SaveError::Busy) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(saved, 1);
    }

    #[tokio::test]
    async fn a_failing_operation_of_the_caller_saves_nothing() {
        let (ports, _dir) = ports();
        let guard = WriteOp::check(keys::activity_import("imp_missing"), Condition::Exists);
        let result = save(
            &ports,
            &footprint("fp_1", "2025-01-01", "2025-12-31"),
            bytes::Bytes::from_static(b"line\n"),
            vec![guard],
        )
        .await;
        assert!(matches!(result, Err(SaveError::ConditionFailed(0))));
        assert!(get(&ports, "fp_1").await.unwrap().is_none());
        save_one(&ports, &footprint("fp_2", "2025-01-01", "2025-12-31"))
            .await
            .expect("the period is still free");
    }
}
