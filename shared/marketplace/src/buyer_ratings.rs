//! Verified-buyer ratings: 1 to 5 stars and a text, by users who bought credits of the project
//! (a completed order they placed), one per user and editable. A project's totals (count and
//! stars) sit in one item of the catalogue feed, so the catalogue shows the average and sorts by
//! it without reading the ratings.
//!
//! Every write is one transaction: the buyer's mark checked, the rating put on its version, the
//! totals moved by the difference. Two edits at once cannot both count; a user who never bought
//! cannot rate, whatever they send.

use std::sync::Arc;

use amanar_core::table::{
    Condition, Index, Query, SortKey, Table, TableError, Update, WriteOp, items,
};
use amanar_core::{Cursor, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The longest rating text.
pub const MAX_TEXT: usize = 2000;

/// One user's rating of a project, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerRating {
    pub project_id: String,
    pub user_id: String,
    pub stars: u8,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A rating as anyone reads it: never who wrote it, only that they bought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingView {
    /// Stable per project and author, and reveals neither.
    pub rating_id: String,
    pub stars: u8,
    pub text: String,
    /// Always true: only buyers rate.
    pub verified_buyer: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether the caller wrote it (false for anonymous callers).
    pub mine: bool,
}

/// A rating's id: a digest of project and author, so one author has one rating per project and
/// neither the id nor a page cursor (which carries the sort key) shows the author's user id.
/// Unkeyed: someone who already knows a user id can test whether a rating is theirs (a keyed
/// digest needs a platform secret in this context; noted in docs/marketplace.md).
pub fn rating_id(project_id: &str, user_id: &str) -> String {
    let digest = Sha256::digest(format!("buyer-rating\0{project_id}\0{user_id}"));
    format!("rtg_{}", &hex::encode(digest)[..24])
}

impl RatingView {
    pub fn of(rating: &BuyerRating, caller: Option<&str>) -> Self {
        Self {
            rating_id: rating_id(&rating.project_id, &rating.user_id),
            stars: rating.stars,
            text: rating.text.clone(),
            verified_buyer: true,
            created_at: rating.created_at,
            updated_at: rating.updated_at,
            mine: caller == Some(rating.user_id.as_str()),
        }
    }
}

/// A project's rating totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RatingTotals {
    pub project_id: String,
    pub count: u64,
    /// The sum of the stars.
    pub stars: u64,
    /// Moves with every write: the catalogue keeps the newest it saw.
    pub revision: u64,
}

/// The average and count a project shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingSummary {
    pub count: u64,
    /// Stars, to two decimals; `null` with no rating.
    pub average: Option<f64>,
}

impl RatingTotals {
    pub fn summary(&self) -> RatingSummary {
        RatingSummary {
            count: self.count,
            average: self
                .thousandths()
                .map(|t| (t as f64 / 10.0).round() / 100.0),
        }
    }

    /// The average in thousandths of a star (4500 is 4.5 stars), the catalogue's sort key.
    pub fn thousandths(&self) -> Option<i64> {
        (self.count > 0).then(|| (self.stars * 1000 / self.count) as i64)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RatingError {
    /// No completed order of this user for the project.
    #[error("only buyers of a project rate it")]
    NotBuyer,
    /// Another edit of the same rating won; the caller may send it again.
    #[error("the rating changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The write that marks `user_id` a verified buyer of a project, after an order they placed
/// completed. An upsert: a later order only moves `lastOrderId`.
pub fn verified_buyer_op(project_id: &str, user_id: &str, order_id: &str) -> WriteOp {
    WriteOp::update(
        keys::verified_buyer(project_id, user_id),
        Update::new().set("lastOrderId", order_id),
    )
}

#[derive(Clone)]
pub struct BuyerRatings {
    table: Arc<dyn Table>,
}

impl BuyerRatings {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn get(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<BuyerRating>, TableError> {
        match self
            .table
            .get(&keys::buyer_rating(
                project_id,
                &rating_id(project_id, user_id),
            ))
            .await?
        {
            Some(item) => Ok(Some(items::parse(item)?)),
            None => Ok(None),
        }
    }

    pub async fn totals(&self, project_id: &str) -> Result<RatingTotals, TableError> {
        match self
            .table
            .get(&keys::buyer_rating_totals(project_id))
            .await?
        {
            Some(item) => items::parse(item),
            None => Ok(RatingTotals {
                project_id: project_id.to_owned(),
                ..RatingTotals::default()
            }),
        }
    }

    /// A project's ratings, a page at a time.
    pub async fn of_project(
        &self,
        project_id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<BuyerRating>, Option<Cursor>), TableError> {
        let query = Query::partition(Index::Primary, keys::buyer_ratings_of(project_id))
            .sort(SortKey::BeginsWith(keys::BUYER_RATING.into()))
            .limit(limit)
            .after(cursor);
        items::parse_page(self.table.query(&query).await?)
    }

    /// Writes the user's rating (their first, or a change of it) and moves the totals. Returns
    /// the rating and whether it is the user's first.
    pub async fn rate(
        &self,
        project_id: &str,
        user_id: &str,
        stars: u8,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(BuyerRating, bool), RatingError> {
        let previous = self.get(project_id, user_id).await?;
        let rating = BuyerRating {
            project_id: project_id.to_owned(),
            user_id: user_id.to_owned(),
            stars,
            text: text.to_owned(),
            created_at: previous.as_ref().map_or(now, |p| p.created_at),
            updated_at: now,
            version: previous.as_ref().map_or(1, |p| p.version + 1),
        };
        let (count, added) = match &previous {
            Some(p) => (0, i64::from(stars) - i64::from(p.stars)),
            None => (1, i64::from(stars)),
        };
        let expected = previous.as_ref().map_or(0, |p| p.version);
        let totals = Update::new()
            .set("projectId", project_id)
            .set("updatedAt", now.to_rfc3339())
            .set_index(keys::catalogue_entry(
                keys::BUYER_RATING_TOTALS,
                project_id,
                now,
            ))
            .add("count", count)
            .add("stars", added)
            .add("revision", 1);
        let ops = vec![
            WriteOp::check(keys::verified_buyer(project_id, user_id), Condition::Exists),
            WriteOp::put(items::with_key(
                &keys::buyer_rating(project_id, &rating_id(project_id, user_id)),
                &rating,
            )?)
            .when(Condition::VersionIs(expected)),
            WriteOp::update(keys::buyer_rating_totals(project_id), totals),
        ];
        match self.table.write(ops).await {
            Ok(()) => Ok((rating, previous.is_none())),
            Err(TableError::ConditionFailed { index: 0, .. }) => Err(RatingError::NotBuyer),
            Err(TableError::ConditionFailed { .. }) => Err(RatingError::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}
