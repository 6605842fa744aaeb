//! Holdings: the credits one order line gave its buyer, each in its own ledger account
//! (`holding:<owner>/<holdingId>`), so a holding's serials stay exactly the ones it was sold and
//! a retirement from it draws on nothing else.

use std::sync::Arc;

use amanar_core::keys;
use amanar_core::table::{Cursor, Index, Item, Query, Table, TableError, items};
use amanar_marketplace::ledger::{Account, Ledger};
use amanar_marketplace::serial::{Standard, Vintage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A holding as stored: what the buyer acquired, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    pub holding_id: String,
    /// `USER#<id>` or `ORG#<id>`.
    pub owner: String,
    pub order_id: String,
    pub line: u32,
    pub project_id: String,
    pub project_name: String,
    pub issuance_id: String,
    #[schema(value_type = String)]
    pub standard: Standard,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    /// Tonnes acquired.
    pub quantity: u64,
    /// The serial blocks acquired, in the registry's format.
    pub serials: Vec<String>,
    pub acquired_at: DateTime<Utc>,
    /// Tonnes no retirement has claimed yet: each retirement request takes its quantity from
    /// this count in the write that records it, so retirements never exceed the holding.
    #[serde(default)]
    pub unretired: u64,
}

impl Holding {
    pub fn account(&self) -> Account {
        Account::holding(&self.owner, &self.holding_id)
    }

    /// The holding's item, listed among its owner's holdings.
    pub fn item(&self) -> Result<Item, TableError> {
        let mut item = items::with_key(&keys::holding(&self.holding_id), self)?;
        keys::holding_of_owner(&self.owner, self.acquired_at, &self.holding_id)
            .insert_into(&mut item);
        Ok(item)
    }
}

/// A holding as its owner sees it: what it was, and the serials it holds now.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldingView {
    #[serde(flatten)]
    pub holding: Holding,
    /// Tonnes still held (not retired).
    pub available: u64,
    /// The serial blocks still held, in the registry's format.
    pub held_serials: Vec<String>,
}

#[derive(Clone)]
pub struct Holdings {
    table: Arc<dyn Table>,
    ledger: Ledger,
}

impl Holdings {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            ledger: Ledger::new(table.clone()),
            table,
        }
    }

    pub async fn get(&self, holding_id: &str) -> Result<Option<Holding>, TableError> {
        items::load(&*self.table, &keys::holding(holding_id)).await
    }

    /// A page of an owner's holdings, newest first.
    pub async fn of_owner(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Holding>, Option<Cursor>), TableError> {
        let query = Query::partition(Index::Gsi1, keys::holdings_of(owner))
            .backward()
            .limit(limit)
            .after(cursor);
        items::parse_page(self.table.query(&query).await?)
    }

    /// The holding with what its account holds now (read from the ledger's account index, which
    /// may lag a movement by a moment).
    pub async fn view(&self, holding: Holding) -> Result<HoldingView, TableError> {
        let account = holding.account();
        let issuance = self
            .ledger
            .issuance(&holding.issuance_id)
            .await
            .map_err(|e| TableError::Backend(e.to_string()))?;
        let blocks = self
            .ledger
            .blocks_of(&account, Some(&holding.issuance_id))
            .await
            .map_err(|e| TableError::Backend(e.to_string()))?;
        let available = blocks.iter().map(|b| b.range.len()).sum();
        let held_serials = match issuance {
            Some(issuance) => blocks.iter().map(|b| issuance.serial_of(b.range)).collect(),
            None => Vec::new(),
        };
        Ok(HoldingView {
            holding,
            available,
            held_serials,
        })
    }
}
