//! Listings: credits of one issuance offered at a unit price, backed by the ledger.
//!
//! Listing moves the quantity from the developer's inventory into the listing's own ledger
//! account ([`Account::Listing`]) in the same write that creates the listing. The account then
//! holds the listing's `available` count plus what unpaid orders reserved from it: an order
//! reserves with [`reserve_guard`], a conditional decrement of `available` that never takes it
//! below zero and only from an active listing, and moves blocks out of the account only once paid
//! (`amanar-orders`). An unpaid order gives its count back with [`release_guard`]. Closing moves
//! `available` back to the seller's inventory in one write with the listing's close; what unpaid
//! orders still hold follows later, under [`closed_guard`]. Nothing ever reads the count and then
//! writes it.
//!
//! `version` counts changes of the terms (price, status): an order quotes the version it priced,
//! and a sale (which only moves `available`) leaves it alone. Every change of terms is an event
//! in the listing's history (`GET /v1/listings/{id}/history`).
//!
//! Each write also moves the listing's entry in the catalogue feed (GSI2 `CATALOGUE#<shard>`), so
//! the search index sees it on its next refresh.

use std::sync::Arc;

use amanar_core::keys;
use amanar_core::table::{
    Condition, Cursor, Index, Query, SortKey, Table, TableError, Update, VERSION, WriteOp, items,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::ledger::{Account, Ledger, LedgerError, Transfer};
use crate::money::Money;
use crate::serial::{Standard, Vintage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// On sale.
    Active,
    /// Off sale for now; its credits stay in the listing.
    Paused,
    /// Off sale for good; unsold credits went back to the developer's inventory.
    Closed,
}

impl ListingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ListingStatus::Active => "active",
            ListingStatus::Paused => "paused",
            ListingStatus::Closed => "closed",
        }
    }
}

/// A stored listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    pub id: String,
    pub project_id: String,
    /// The issuance (credit batch) whose credits it offers.
    pub issuance_id: String,
    /// Whose inventory the credits came from and return to: `USER#<id>` or `ORG#<id>`.
    pub seller: String,
    #[schema(value_type = String)]
    pub standard: Standard,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    /// Tonnes listed.
    pub quantity: u64,
    /// Tonnes still for sale: what the listing's ledger account holds.
    pub available: u64,
    /// Per tonne.
    pub unit_price: Money,
    pub status: ListingStatus,
    /// Changes of terms (price or status); a sale leaves it alone.
    pub version: u64,
    /// Every write of the listing, sales included: how the catalogue tells a newer state from an
    /// older one, whatever the writers' clocks say.
    #[serde(default)]
    pub revision: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What happened to a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    PriceChanged,
    Paused,
    Resumed,
    Closed,
}

/// One event in a listing's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingEvent {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: EventKind,
    /// The price after the event (created, price changed).
    pub price: Option<Money>,
    /// The price before a change.
    pub previous_price: Option<Money>,
    /// Tonnes listed (created) or returned to inventory (closed).
    pub quantity: Option<u64>,
}

/// A new listing, checked by the caller against the project and the seller's rights.
#[derive(Debug, Clone)]
pub struct NewListing {
    pub id: String,
    pub project_id: String,
    pub issuance_id: String,
    pub seller: String,
    pub standard: Standard,
    pub vintage: Vintage,
    pub quantity: u64,
    pub unit_price: Money,
    pub actor: String,
    pub now: DateTime<Utc>,
}

/// A change of terms: a new price, pausing or resuming. `version`, when given, must be the
/// current one (optimistic concurrency); without it the change applies to the latest terms.
#[derive(Debug, Clone, Default)]
pub struct ListingChange {
    pub unit_price: Option<Money>,
    pub status: Option<ListingStatus>,
    pub version: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("no such listing")]
    NotFound,
    /// The inventory holds fewer unlisted credits of the issuance.
    #[error("{available} credits of the issuance are in inventory, {requested} were asked for")]
    Insufficient { available: u64, requested: u64 },
    #[error("the listing is {current}")]
    State { current: &'static str },
    #[error("the listing's terms are at version {current}")]
    Version { current: u64 },
    #[error("a change names a price or a status")]
    Empty,
    #[error("a listing's price stays in its currency {0}")]
    Currency(&'static str),
    /// The project has as many open listings as it may.
    #[error("the project has {MAX_OPEN_LISTINGS} open listings, the most it may")]
    TooManyListings,
    /// Closing takes no other change.
    #[error("closing changes nothing else")]
    CloseWithChanges,
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl From<LedgerError> for ListingError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Insufficient {
                available,
                requested,
            } => ListingError::Insufficient {
                available,
                requested,
            },
            LedgerError::Table(e) => ListingError::Table(e),
            other => ListingError::Ledger(other),
        }
    }
}

/// How often a close or change is planned again after an order moved the listing under it.
const ATTEMPTS: u32 = 32;

/// The most open (active or paused) listings one project has at a time: each takes one of the
/// project's listing slots in the write that creates it, and closing gives it back.
pub const MAX_OPEN_LISTINGS: i64 = 100;

/// The project item's count of listings it may still open.
pub const LISTING_SLOTS: &str = "listingSlots";

/// The update that takes (`-1`) or gives back (`+1`) one of a project's listing slots.
fn slot_op(project_id: &str, delta: i64) -> WriteOp {
    let op = WriteOp::update(
        keys::project(project_id),
        Update::new().add(LISTING_SLOTS, delta),
    );
    if delta < 0 {
        op.when(Condition::AtLeast(LISTING_SLOTS.into(), -delta))
    } else {
        op.when(Condition::Exists)
    }
}

/// Listings over the Table port and the ledger.
#[derive(Clone)]
pub struct Listings {
    table: Arc<dyn Table>,
    ledger: Ledger,
}

impl Listings {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            ledger: Ledger::new(table.clone()),
            table,
        }
    }

    /// Lists credits: moves `quantity` of the issuance from the seller's inventory into the
    /// listing's account, creating the listing and its first event in the same write.
    pub async fn create(&self, new: NewListing) -> Result<Listing, ListingError> {
        let listing = Listing {
            id: new.id.clone(),
            project_id: new.project_id.clone(),
            issuance_id: new.issuance_id.clone(),
            seller: new.seller.clone(),
            standard: new.standard,
            vintage: new.vintage,
            quantity: new.quantity,
            available: new.quantity,
            unit_price: new.unit_price,
            status: ListingStatus::Active,
            version: 1,
            revision: 1,
            created_by: new.actor.clone(),
            created_at: new.now,
            updated_at: new.now,
        };
        let mut item = items::with_key(&keys::listing(&new.id), &listing)?;
        keys::listing_of_project(&new.project_id, new.now, &new.id).insert_into(&mut item);
        keys::catalogue_entry("LISTING", &new.id, new.now).insert_into(&mut item);
        let event = ListingEvent {
            at: new.now,
            actor: new.actor.clone(),
            kind: EventKind::Created,
            price: Some(new.unit_price),
            previous_price: None,
            quantity: Some(new.quantity),
        };
        let guards = vec![
            WriteOp::put(item).when(Condition::NotExists),
            event_op(&new.id, &event)?,
            slot_op(&new.project_id, -1),
        ];
        let transfer = Transfer {
            id: format!("list:{}", new.id),
            from: Account::Inventory(new.seller),
            to: Account::Listing(new.id.clone()),
            quantity: new.quantity,
            issuance: new.issuance_id,
        };
        match self.ledger.transfer(&transfer, &guards).await {
            Ok(_) => Ok(listing),
            Err(LedgerError::Guard { index: 2 }) => Err(ListingError::TooManyListings),
            Err(LedgerError::Guard { .. }) => Err(ListingError::Ledger(LedgerError::Invalid(
                format!("listing {} exists already", new.id),
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Listing>, ListingError> {
        Ok(items::load(self.table.as_ref(), &keys::listing(id)).await?)
    }

    async fn load(&self, id: &str) -> Result<Listing, ListingError> {
        self.get(id).await?.ok_or(ListingError::NotFound)
    }

    /// A page of a project's listings, oldest first (every status).
    pub async fn of_project(
        &self,
        project_id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Listing>, Option<Cursor>), ListingError> {
        let query = Query::partition(Index::Gsi1, keys::listings_of_project(project_id))
            .limit(limit)
            .after(cursor);
        Ok(items::parse_page(self.table.query(&query).await?)?)
    }

    /// A page of a listing's events, oldest first.
    pub async fn history(
        &self,
        id: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<ListingEvent>, Option<Cursor>), ListingError> {
        let query = Query::partition(Index::Primary, keys::listing(id).pk)
            .sort(SortKey::BeginsWith(keys::LISTING_EVENT_PREFIX.into()))
            .limit(limit)
            .after(cursor);
        Ok(items::parse_page(self.table.query(&query).await?)?)
    }

    /// Changes the price, or pauses or resumes the listing; each change is an event.
    pub async fn change(
        &self,
        id: &str,
        change: &ListingChange,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Listing, ListingError> {
        if change.unit_price.is_none() && change.status.is_none() {
            return Err(ListingError::Empty);
        }
        if change.status == Some(ListingStatus::Closed) {
            if change.unit_price.is_some() {
                return Err(ListingError::CloseWithChanges);
            }
            return self.close(id, change.version, actor, now).await;
        }
        for _ in 0..ATTEMPTS {
            let listing = self.load(id).await?;
            if let Some(expected) = change.version
                && expected != listing.version
            {
                return Err(ListingError::Version {
                    current: listing.version,
                });
            }
            if listing.status == ListingStatus::Closed {
                return Err(ListingError::State { current: "closed" });
            }
            let mut events = Vec::new();
            let mut changed = listing.clone();
            if let Some(price) = change.unit_price {
                if price.currency() != listing.unit_price.currency() {
                    return Err(ListingError::Currency(listing.unit_price.currency()));
                }
                if price != listing.unit_price {
                    changed.unit_price = price;
                    events.push(ListingEvent {
                        at: now,
                        actor: actor.to_owned(),
                        kind: EventKind::PriceChanged,
                        price: Some(price),
                        previous_price: Some(listing.unit_price),
                        quantity: None,
                    });
                }
            }
            if let Some(status) = change.status
                && status != listing.status
            {
                changed.status = status;
                events.push(ListingEvent {
                    at: now,
                    actor: actor.to_owned(),
                    kind: if status == ListingStatus::Paused {
                        EventKind::Paused
                    } else {
                        EventKind::Resumed
                    },
                    price: None,
                    previous_price: None,
                    quantity: None,
                });
            }
            if events.is_empty() {
                return Ok(listing);
            }
            changed.version += 1;
            changed.revision += 1;
            changed.updated_at = now;
            let update = Update::new()
                .set("unitPrice", json!(changed.unit_price))
                .set("status", changed.status.as_str())
                .set("updatedAt", json!(now))
                .set(VERSION, changed.version)
                .add("revision", 1)
                .set_index(keys::catalogue_entry("LISTING", id, now));
            let mut ops = vec![
                WriteOp::update(keys::listing(id), update)
                    .when(Condition::VersionIs(listing.version)),
            ];
            for event in &events {
                ops.push(event_op(id, event)?);
            }
            match self.table.write(ops).await {
                // What was written; `available` and `revision` as read (a sale may have moved
                // them since).
                Ok(()) => return Ok(changed),
                // The terms moved under the change: read them again.
                Err(TableError::ConditionFailed { .. } | TableError::TransactionConflict) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ListingError::Ledger(LedgerError::Contended))
    }

    /// Closes the listing: what it still holds goes back to the seller's inventory in the write
    /// that closes it. Closing a closed listing returns it as it is.
    pub async fn close(
        &self,
        id: &str,
        version: Option<u64>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Listing, ListingError> {
        for _ in 0..ATTEMPTS {
            let listing = self.load(id).await?;
            if listing.status == ListingStatus::Closed {
                return Ok(listing);
            }
            if let Some(expected) = version
                && expected != listing.version
            {
                return Err(ListingError::Version {
                    current: listing.version,
                });
            }
            let returned = listing.available;
            let update = Update::new()
                .set("status", ListingStatus::Closed.as_str())
                .set("available", 0)
                .set("updatedAt", json!(now))
                .set(VERSION, listing.version + 1)
                .add("revision", 1)
                .set_index(keys::catalogue_entry("LISTING", id, now));
            let close = WriteOp::update(keys::listing(id), update)
                .when(Condition::VersionIs(listing.version))
                .when(Condition::Equals("available".into(), json!(returned)));
            let event = event_op(
                id,
                &ListingEvent {
                    at: now,
                    actor: actor.to_owned(),
                    kind: EventKind::Closed,
                    price: None,
                    previous_price: None,
                    quantity: Some(returned),
                },
            )?;
            let slot = slot_op(&listing.project_id, 1);
            let outcome = if returned == 0 {
                self.table
                    .write(vec![close, event, slot])
                    .await
                    .map_err(ListingError::from)
            } else {
                let transfer = Transfer {
                    // One close per listing: a retry after a lost outcome finds it made.
                    id: format!("close:{id}"),
                    from: Account::Listing(id.to_owned()),
                    to: Account::Inventory(listing.seller.clone()),
                    quantity: returned,
                    issuance: listing.issuance_id.clone(),
                };
                self.ledger
                    .transfer(&transfer, &[close, event, slot])
                    .await
                    .map(|_| ())
                    .map_err(ListingError::from)
            };
            match outcome {
                Ok(()) => {
                    return Ok(Listing {
                        status: ListingStatus::Closed,
                        available: 0,
                        version: listing.version + 1,
                        revision: listing.revision + 1,
                        updated_at: now,
                        ..listing
                    });
                }
                // An order moved the count (its credits left the account before the listing
                // was read again), or the terms changed: read again.
                Err(ListingError::Ledger(LedgerError::Guard { .. }))
                | Err(ListingError::Insufficient { .. })
                // A concurrent close of another count landed first: the next read finds it closed.
                | Err(ListingError::Ledger(LedgerError::MovementReused(_)))
                | Err(ListingError::Table(
                    TableError::ConditionFailed { .. } | TableError::TransactionConflict,
                )) => {}
                Err(e) => return Err(e),
            }
        }
        Err(ListingError::Ledger(LedgerError::Contended))
    }
}

/// The guard an order adds to its ledger transfer out of a listing: takes `quantity` from the
/// listing's available count, only while the listing is active at the terms version the order
/// priced and holds that many. Fails its condition otherwise, and the transfer writes nothing.
pub fn reserve_guard(
    listing_id: &str,
    quantity: u64,
    terms_version: u64,
    now: DateTime<Utc>,
) -> WriteOp {
    // Beyond i64 no listing holds that many: the condition below then never holds.
    let quantity = i64::try_from(quantity).unwrap_or(i64::MAX);
    let update = Update::new()
        .add("available", -quantity)
        .add("revision", 1)
        .set("updatedAt", json!(now))
        .set_index(keys::catalogue_entry("LISTING", listing_id, now));
    WriteOp::update(keys::listing(listing_id), update)
        .when(Condition::VersionIs(terms_version))
        .when(Condition::Equals(
            "status".into(),
            json!(ListingStatus::Active.as_str()),
        ))
        .when(Condition::AtLeast("available".into(), quantity))
}

/// The guard an order adds to the transfer that gives an unpaid reservation back to a listing
/// that is still open: adds `quantity` to the available count while the listing is in `status`
/// (`active` or `paused`, as the caller read it). A closed listing takes nothing back: the
/// credits go to the seller's inventory instead, under [`closed_guard`].
pub fn release_guard(
    listing_id: &str,
    quantity: u64,
    status: ListingStatus,
    now: DateTime<Utc>,
) -> WriteOp {
    let quantity = i64::try_from(quantity).unwrap_or(i64::MAX);
    let update = Update::new()
        .add("available", quantity)
        .add("revision", 1)
        .set("updatedAt", json!(now))
        .set_index(keys::catalogue_entry("LISTING", listing_id, now));
    WriteOp::update(keys::listing(listing_id), update)
        .when(Condition::Equals("status".into(), json!(status.as_str())))
}

/// The check beside a transfer of released credits to the seller's inventory: the listing is
/// closed (so its count, zeroed at close, stays zero).
pub fn closed_guard(listing_id: &str) -> WriteOp {
    WriteOp::check(
        keys::listing(listing_id),
        Condition::Equals("status".into(), json!(ListingStatus::Closed.as_str())),
    )
}

fn event_op(listing_id: &str, event: &ListingEvent) -> Result<WriteOp, TableError> {
    let key = keys::listing_event(listing_id, event.at, &amanar_core::new_id("lev"));
    Ok(WriteOp::put(items::with_key(&key, event)?).when(Condition::NotExists))
}
