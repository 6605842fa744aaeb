//! The credit ledger: every issued credit sits in exactly one block, and every block in one account.
//!
//! An issuance claims a serial range in its namespace ([`crate::serial`]) and starts as one
//! inventory block (and, for non-permanent projects, a buffer block at the top of the range).
//! Every later movement (listing, reservation, sale, retirement, cancellation, freezing) is
//! [`Ledger::transfer`]: it moves a quantity from one account to another, splitting the last
//! block it touches so that ranges stay contiguous and disjoint. The invariants:
//!
//! 1. the blocks of an issuance are disjoint, contiguous, and cover exactly its range;
//! 2. no two issuances claim overlapping ranges in one namespace;
//! 3. a retired or cancelled block never moves again, and the buffer receives credits only at
//!    issuance;
//! 4. a caller's records beside the ledger (a listing's available count, an order's state) change
//!    in the same write as the blocks, or not at all.
//!
//! None of them is checked by reading and then writing. Each movement is one all-or-nothing table
//! write whose conditions carry the state it was planned on: every block it changes must still be
//! at the version it read, and every block it creates must not exist. A concurrent movement of the
//! same block makes one of the two fail its condition; the loser plans again from a fresh read,
//! or is refused when what is left no longer covers it. Claims in a namespace move the namespace's
//! head version, so two overlapping claims never both pass their overlap check. A caller adds its
//! own conditions (a listing's available count, an order's state) to the same write, so the
//! ledger and the records beside it never disagree.
//!
//! Storage: `docs/marketplace.md` and the key table in `amanar_core::keys`.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::keys;
use amanar_core::table::{
    Condition, Index, Item, Key, MAX_WRITE_OPS, Query, SortKey, Table, TableError, Update, VERSION,
    WriteOp, items,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::serial::{self, Range, SerialBlock, Standard, Vintage};

/// Where a block sits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// A developer's unsold credits (owner `USER#<id>` or `ORG#<id>`).
    Inventory(String),
    /// The reserve of a listing: what it may still sell.
    Listing(String),
    /// Credits held for an unpaid order.
    Reserved(String),
    /// A buyer's credits from one purchase: `<owner>/<holdingId>`, the owner `USER#<id>` or
    /// `ORG#<id>` ([`Account::holding`]).
    Holding(String),
    /// The buffer pool: withheld at issuance against reversals of non-permanent projects.
    Buffer,
    /// Credits held out of circulation while a purchase is disputed.
    Frozen(String),
    /// Retired for a claim, by retirement id. Final.
    Retired(String),
    /// Cancelled (invalidated, or withdrawn without a claim), by cancellation id. Final.
    Cancelled(String),
}

/// What a block's account says about its credits, as serial lookup reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Issued,
    Listed,
    Reserved,
    Held,
    Buffer,
    Frozen,
    Retired,
    Cancelled,
}

impl Account {
    /// The account's text form, as stored: `inventory:ORG#org_1`, `buffer`, `retired:ret_1`.
    pub fn encode(&self) -> String {
        match self {
            Account::Inventory(owner) => format!("inventory:{owner}"),
            Account::Listing(id) => format!("listing:{id}"),
            Account::Reserved(id) => format!("reserved:{id}"),
            Account::Holding(owner) => format!("holding:{owner}"),
            Account::Buffer => "buffer".into(),
            Account::Frozen(id) => format!("frozen:{id}"),
            Account::Retired(id) => format!("retired:{id}"),
            Account::Cancelled(id) => format!("cancelled:{id}"),
        }
    }

    pub fn decode(text: &str) -> Option<Account> {
        if text == "buffer" {
            return Some(Account::Buffer);
        }
        let (kind, id) = text.split_once(':')?;
        if id.is_empty() {
            return None;
        }
        let id = id.to_owned();
        Some(match kind {
            "inventory" => Account::Inventory(id),
            "listing" => Account::Listing(id),
            "reserved" => Account::Reserved(id),
            "holding" => Account::Holding(id),
            "frozen" => Account::Frozen(id),
            "retired" => Account::Retired(id),
            "cancelled" => Account::Cancelled(id),
            _ => return None,
        })
    }

    pub fn status(&self) -> Status {
        match self {
            Account::Inventory(_) => Status::Issued,
            Account::Listing(_) => Status::Listed,
            Account::Reserved(_) => Status::Reserved,
            Account::Holding(_) => Status::Held,
            Account::Buffer => Status::Buffer,
            Account::Frozen(_) => Status::Frozen,
            Account::Retired(_) => Status::Retired,
            Account::Cancelled(_) => Status::Cancelled,
        }
    }

    /// Checks the id an account carries: 1 to 128 printable characters without spaces.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let id = match self {
            Account::Buffer => return Ok(()),
            Account::Inventory(id)
            | Account::Listing(id)
            | Account::Reserved(id)
            | Account::Holding(id)
            | Account::Frozen(id)
            | Account::Retired(id)
            | Account::Cancelled(id) => id,
        };
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(LedgerError::Invalid(format!(
                "account {:?} needs an id of 1 to 128 printable characters",
                self.encode()
            )));
        }
        Ok(())
    }

    /// The account of one holding of `owner` (`USER#<id>` or `ORG#<id>`).
    pub fn holding(owner: &str, holding_id: &str) -> Account {
        Account::Holding(format!("{owner}/{holding_id}"))
    }

    /// Whose credits these are, for an inventory or a holding: `USER#<id>` or `ORG#<id>`.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Account::Inventory(owner) => Some(owner),
            Account::Holding(id) => {
                Some(id.split_once('/').map_or(id.as_str(), |(owner, _)| owner))
            }
            _ => None,
        }
    }

    /// Retired and cancelled credits never move again.
    pub fn is_final(&self) -> bool {
        matches!(self, Account::Retired(_) | Account::Cancelled(_))
    }
}

/// An issuance: credits of one project and vintage, over one serial range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Issuance {
    pub id: String,
    pub project_id: String,
    pub standard: Standard,
    /// The whole issued block, as the registry writes it (or the platform, for `NATIVE`).
    pub serial: SerialBlock,
    pub vintage: Vintage,
    /// Every credit of the issuance, buffer included.
    pub quantity: u64,
    /// The buffer-pool share withheld at issuance (the top of the range).
    pub buffer: u64,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
}

impl Issuance {
    pub fn range(&self) -> Range {
        self.serial.range
    }

    /// The serial of a sub-range, in the registry's format.
    pub fn serial_of(&self, range: Range) -> String {
        self.serial.render(range)
    }
}

/// A contiguous range of one issuance's credits in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub issuance_id: String,
    pub range: Range,
    pub account: Account,
    pub version: u64,
}

/// What [`Ledger::issue`] needs: the parsed serial block (the platform writes one for `NATIVE`),
/// the buffer share already computed, and whose inventory receives the rest.
#[derive(Debug, Clone)]
pub struct NewIssuance {
    pub id: String,
    pub project_id: String,
    pub serial: SerialBlock,
    pub vintage: Vintage,
    pub buffer: u64,
    pub inventory_owner: String,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
}

/// One movement: `quantity` credits from `from` to `to`, lowest serials first, optionally only
/// from one issuance.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The movement's id, chosen by the caller from what it does (`reserve:<orderId>:<line>`),
    /// never random: a movement with an id already recorded is not made again, so a retried
    /// request, a redelivered message or a write whose outcome was lost moves credits once.
    pub id: String,
    pub from: Account,
    pub to: Account,
    pub quantity: u64,
    pub issuance: String,
}

/// A movement as recorded, under its id: what moved, and where the credits went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Movement {
    issuance_id: String,
    from: String,
    to: String,
    quantity: u64,
    moved: Vec<Range>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    /// Another issuance claimed `claimed`, which overlaps the requested range.
    #[error("the serials overlap {claimed}, claimed by issuance {issuance} in {namespace}")]
    Overlap {
        namespace: String,
        claimed: Range,
        issuance: String,
    },
    #[error("issuance {0} exists already")]
    AlreadyIssued(String),
    #[error("{available} credits available, {requested} requested")]
    Insufficient { available: u64, requested: u64 },
    #[error("{0} is final: its credits never move again")]
    Final(String),
    #[error("the buffer pool receives credits only at issuance")]
    IntoBuffer,
    /// The movement spans so many blocks that its operations, with the caller's, exceed one write.
    #[error(
        "the movement needs {operations} operations in one write, more than {MAX_WRITE_OPS}; move less at a time"
    )]
    TooFragmented { operations: usize },
    /// Concurrent movements kept winning; nothing was written. Retry later.
    #[error("the credits kept moving under concurrent writes; nothing was written")]
    Contended,
    /// A condition the caller added failed; nothing was written. `index` is its position among
    /// the caller's operations.
    #[error("condition {index} of the caller's operations failed")]
    Guard { index: usize },
    /// The movement id was recorded before, for another movement.
    #[error("movement {0} was recorded before with other accounts or another quantity")]
    MovementReused(String),
    #[error("invalid ledger request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// How often a movement is planned again after losing to a concurrent one. Fifty buyers of one
/// block resolve one winner per round, so the budget covers that many.
const ATTEMPTS: u32 = 64;

/// The most credits one issuance may hold.
pub const MAX_ISSUANCE: u64 = 1_000_000_000;

/// Position of the issuance's put in [`Ledger::issue`]'s write.
const ISSUANCE_OP: usize = 2;

/// The ledger over the Table port.
#[derive(Clone)]
pub struct Ledger {
    table: Arc<dyn Table>,
}

impl Ledger {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Issues credits: claims the serial range in its namespace (refused if any part of it was
    /// claimed before) and creates the issuance with its inventory and buffer blocks, in one write.
    ///
    /// Issuing is idempotent by id: the same issuance issued again (a retried request, or a retry
    /// after a write whose outcome was lost) returns the stored one; another issuance under a used
    /// id is [`LedgerError::AlreadyIssued`].
    pub async fn issue(&self, new: NewIssuance) -> Result<Issuance, LedgerError> {
        let range = new.serial.range;
        valid_id("issuance id", &new.id)?;
        Account::Inventory(new.inventory_owner.clone()).validate()?;
        if range.len() > MAX_ISSUANCE {
            return Err(LedgerError::Invalid(format!(
                "an issuance holds at most {MAX_ISSUANCE} credits"
            )));
        }
        if new.buffer > range.len() {
            return Err(LedgerError::Invalid(format!(
                "a buffer of {} exceeds the {} credits issued",
                new.buffer,
                range.len()
            )));
        }
        // The serial must be one the parser makes: written back and read again, it is the same.
        let reparsed = serial::parse(new.serial.standard, &new.serial.render(range));
        if reparsed.as_ref() != Ok(&new.serial) {
            return Err(LedgerError::Invalid(
                "the serial block is not one serial::parse returns".into(),
            ));
        }
        if new.serial.standard == Standard::Native
            && new.serial.namespace != format!("NATIVE#{}", new.id)
        {
            return Err(LedgerError::Invalid(
                "a native serial names its own issuance".into(),
            ));
        }
        let issuance = Issuance {
            id: new.id,
            project_id: new.project_id,
            standard: new.serial.standard,
            quantity: range.len(),
            buffer: new.buffer,
            vintage: new.vintage,
            serial: new.serial,
            issued_by: new.issued_by,
            issued_at: new.issued_at,
        };
        let namespace = issuance.serial.namespace.clone();
        let inventory = Account::Inventory(new.inventory_owner);
        for attempt in 0..ATTEMPTS {
            let head = self
                .table
                .get(&keys::serial_namespace_head(&namespace))
                .await?;
            let version = head
                .as_ref()
                .and_then(|h| h.get(VERSION))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            // Claims are disjoint, so if any claim overlaps the range, the one starting highest
            // at or below its end does.
            if let Some(claim) = self.claim_at_or_below(&namespace, range.last()).await?
                && claim.range.overlaps(&range)
            {
                // A retried request (or a retry after an unknown outcome) finds its own claim.
                if claim.issuance_id == issuance.id {
                    return self.issued_before(issuance).await;
                }
                return Err(LedgerError::Overlap {
                    namespace,
                    claimed: claim.range,
                    issuance: claim.issuance_id,
                });
            }
            // The issuance's own put sits at ISSUANCE_OP, so a failed "does not exist" there is
            // an id issued before.
            let mut ops = vec![
                WriteOp::update(
                    keys::serial_namespace_head(&namespace),
                    Update::new().set(VERSION, version + 1),
                )
                .when(Condition::VersionIs(version)),
                WriteOp::put(claim_item(&namespace, range, &issuance.id)?)
                    .when(Condition::NotExists),
                WriteOp::put(issuance_item(&issuance)?).when(Condition::NotExists),
            ];
            let parts = [
                (range.head(range.len() - issuance.buffer), &inventory),
                (range.tail(issuance.buffer), &Account::Buffer),
            ];
            for (part, account) in parts {
                if let Some(part) = part {
                    ops.push(
                        WriteOp::put(block_item(&issuance.id, part, account, 1)?)
                            .when(Condition::NotExists),
                    );
                }
            }
            match self.table.write(ops).await {
                Ok(()) => return Ok(issuance),
                Err(TableError::ConditionFailed {
                    index: ISSUANCE_OP, ..
                }) => return self.issued_before(issuance).await,
                // Another claim in the namespace landed first: check for overlap again.
                Err(TableError::ConditionFailed { .. } | TableError::TransactionConflict) => {
                    backoff(attempt).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(LedgerError::Contended)
    }

    /// The stored issuance under this id, if it is the one asked for (its time aside).
    async fn issued_before(&self, asked: Issuance) -> Result<Issuance, LedgerError> {
        match self.issuance(&asked.id).await? {
            Some(stored)
                if stored.project_id == asked.project_id
                    && stored.serial == asked.serial
                    && stored.vintage == asked.vintage
                    && stored.buffer == asked.buffer =>
            {
                Ok(stored)
            }
            _ => Err(LedgerError::AlreadyIssued(asked.id)),
        }
    }

    pub async fn issuance(&self, issuance_id: &str) -> Result<Option<Issuance>, LedgerError> {
        Ok(items::load(self.table.as_ref(), &keys::issuance(issuance_id)).await?)
    }

    /// A project's issuances, oldest first.
    pub async fn issuances_of(&self, project_id: &str) -> Result<Vec<Issuance>, LedgerError> {
        let query = Query::partition(Index::Gsi1, keys::issuances_of_project(project_id));
        Ok(items::query_all_as(self.table.as_ref(), &query).await?)
    }

    /// The blocks of an issuance that hold any serial of `range`, by first serial.
    pub async fn blocks_in(
        &self,
        issuance_id: &str,
        range: Range,
    ) -> Result<Vec<Block>, LedgerError> {
        // The block holding the first serial starts at or below it; the rest start inside.
        let start = match self.block_at(issuance_id, range.first()).await? {
            Some(block) => block.range.first(),
            None => range.first(),
        };
        let query = Query::partition(Index::Primary, keys::issuance_partition(issuance_id)).sort(
            SortKey::Between(
                keys::credit_block(issuance_id, start).sk,
                keys::credit_block(issuance_id, range.last()).sk,
            ),
        );
        self.all(query).await
    }

    /// The block of an issuance that holds serial `number`, if any.
    async fn block_at(&self, issuance_id: &str, number: u64) -> Result<Option<Block>, LedgerError> {
        let last = self
            .last_at_or_below(
                keys::credit_block(issuance_id, 0),
                keys::credit_block(issuance_id, number),
            )
            .await?;
        let block = last.as_ref().map(decode_block).transpose()?;
        Ok(block.filter(|b| b.range.contains(number)))
    }

    /// Every block of an issuance, by first serial (strongly consistent).
    pub async fn blocks(&self, issuance_id: &str) -> Result<Vec<Block>, LedgerError> {
        let query = Query::partition(Index::Primary, keys::issuance_partition(issuance_id))
            .sort(SortKey::BeginsWith(keys::BLOCK_PREFIX.into()));
        self.all(query).await
    }

    /// The blocks an account holds, by issuance and first serial. Read from an index, so a block
    /// that just moved may still show for a moment; movements re-check every block they touch.
    pub async fn blocks_of(
        &self,
        account: &Account,
        issuance_id: Option<&str>,
    ) -> Result<Vec<Block>, LedgerError> {
        let mut query = Query::partition(Index::Gsi1, keys::blocks_of_account(&account.encode()));
        if let Some(id) = issuance_id {
            query = query.sort(SortKey::BeginsWith(keys::blocks_of_issuance_in_account(id)));
        }
        let blocks = self.all(query).await?;
        Ok(blocks
            .into_iter()
            .filter(|b| &b.account == account && issuance_id.is_none_or(|id| b.issuance_id == id))
            .collect())
    }

    /// How many credits an account holds (optionally of one issuance).
    pub async fn balance(
        &self,
        account: &Account,
        issuance_id: Option<&str>,
    ) -> Result<u64, LedgerError> {
        Ok(self
            .blocks_of(account, issuance_id)
            .await?
            .iter()
            .map(|b| b.range.len())
            .sum())
    }

    /// Moves credits between accounts in one write, with the caller's own operations (`guards`)
    /// in the same write. Returns the blocks as they now sit in `to`.
    pub async fn transfer(
        &self,
        transfer: &Transfer,
        guards: &[WriteOp],
    ) -> Result<Vec<Block>, LedgerError> {
        let mut moved = self
            .transfer_all(std::slice::from_ref(transfer), guards)
            .await?;
        Ok(moved.pop().unwrap_or_default())
    }

    /// Makes several movements in one write with the caller's `guards`: all of them or none (an
    /// order reserving each of its lines). No two may draw on the same account and issuance, so
    /// their plans never touch one block twice. Returns, per movement, the blocks as they now sit
    /// in its `to`.
    pub async fn transfer_all(
        &self,
        transfers: &[Transfer],
        guards: &[WriteOp],
    ) -> Result<Vec<Vec<Block>>, LedgerError> {
        self.transfer_planned(transfers, |_| Ok(guards.to_vec()))
            .await
    }

    /// [`Self::transfer_all`], with the caller's operations made from each attempt's plan (the
    /// blocks each movement is about to move, as they will sit in its `to`): a purchase writes
    /// the exact serials it allocates into the order in the same write.
    pub async fn transfer_planned(
        &self,
        transfers: &[Transfer],
        guards_for: impl Fn(&[Vec<Block>]) -> Result<Vec<WriteOp>, LedgerError>,
    ) -> Result<Vec<Vec<Block>>, LedgerError> {
        if transfers.is_empty() {
            return Err(LedgerError::Invalid("nothing to move".into()));
        }
        for (i, transfer) in transfers.iter().enumerate() {
            check_transfer(transfer)?;
            let shared = transfers[..i].iter().any(|t| {
                t.id == transfer.id || (t.from == transfer.from && t.issuance == transfer.issuance)
            });
            if shared {
                return Err(LedgerError::Invalid(format!(
                    "movement {} shares its id, or its account and issuance, with another in the same write",
                    transfer.id
                )));
            }
        }
        // The records are read before the first attempt, and again only when a write finds one
        // there (a concurrent call with the same ids landed first).
        let mut check_records = true;
        for attempt in 0..ATTEMPTS {
            if check_records && let Some(moved) = self.all_recorded(transfers).await? {
                return Ok(moved);
            }
            check_records = false;
            let mut records = Vec::with_capacity(transfers.len());
            let mut plans = Vec::with_capacity(transfers.len());
            for transfer in transfers {
                let plan = self.plan_now(transfer).await?;
                let movement = Movement {
                    issuance_id: transfer.issuance.clone(),
                    from: transfer.from.encode(),
                    to: transfer.to.encode(),
                    quantity: transfer.quantity,
                    moved: plan.moved.iter().map(|b| b.range).collect(),
                };
                records.push(
                    WriteOp::put(items::with_key(
                        &keys::ledger_movement(&transfer.id),
                        &movement,
                    )?)
                    .when(Condition::NotExists),
                );
                plans.push(plan);
            }
            // The records, the plans, then the caller's guards.
            let ours = records.len() + plans.iter().map(|p| p.ops.len()).sum::<usize>();
            let planned: Vec<Vec<Block>> = plans.iter().map(|p| p.moved.clone()).collect();
            let guards = guards_for(&planned)?;
            if ours + guards.len() > MAX_WRITE_OPS {
                return Err(LedgerError::TooFragmented {
                    operations: ours + guards.len(),
                });
            }
            let mut ops = records;
            let mut moved = Vec::with_capacity(plans.len());
            for plan in plans {
                ops.extend(plan.ops);
                moved.push(plan.moved);
            }
            ops.extend(guards);
            match self.table.write(ops).await {
                Ok(()) => return Ok(moved),
                Err(TableError::ConditionFailed { index, .. }) if index >= ours => {
                    return Err(LedgerError::Guard {
                        index: index - ours,
                    });
                }
                // A record exists: read them on the next round.
                Err(TableError::ConditionFailed { index, .. }) if index < transfers.len() => {
                    check_records = true
                }
                // A block moved under the plan: plan again.
                Err(TableError::ConditionFailed { .. } | TableError::TransactionConflict) => {
                    backoff(attempt).await
                }
                // Throttling or an unknown outcome: the caller retries with the same movement
                // ids, which the records make safe.
                Err(e) => return Err(e.into()),
            }
        }
        Err(LedgerError::Contended)
    }

    /// Plans one movement on the source account's blocks as they are now.
    async fn plan_now(&self, transfer: &Transfer) -> Result<Plan, LedgerError> {
        let candidates = self
            .blocks_of(&transfer.from, Some(&transfer.issuance))
            .await?;
        match plan(&candidates, transfer) {
            // The index may not show a block split off a moment ago. Within one issuance the
            // table itself answers, strongly consistent, before the transfer is refused.
            Err(LedgerError::Insufficient { .. }) => {
                let mut blocks = self.blocks(&transfer.issuance).await?;
                blocks.retain(|b| b.account == transfer.from);
                plan(&blocks, transfer)
            }
            other => other,
        }
    }

    /// The blocks each movement moved, when every one was recorded; `None` when none was.
    /// Movements made in one write are recorded together, so some recorded and some not means
    /// an id was used before for another write.
    async fn all_recorded(
        &self,
        transfers: &[Transfer],
    ) -> Result<Option<Vec<Vec<Block>>>, LedgerError> {
        let mut found = Vec::with_capacity(transfers.len());
        for transfer in transfers {
            found.push(self.recorded(transfer).await?);
        }
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        if let Some(i) = found.iter().position(Option::is_none) {
            return Err(LedgerError::MovementReused(transfers[i].id.clone()));
        }
        Ok(Some(found.into_iter().flatten().collect()))
    }

    /// The blocks a movement with this id moved, if it was recorded; refused if the id was used
    /// for another movement.
    async fn recorded(&self, transfer: &Transfer) -> Result<Option<Vec<Block>>, LedgerError> {
        let key = keys::ledger_movement(&transfer.id);
        let Some(movement) = items::load::<Movement>(self.table.as_ref(), &key).await? else {
            return Ok(None);
        };
        let same = movement.issuance_id == transfer.issuance
            && movement.from == transfer.from.encode()
            && movement.to == transfer.to.encode()
            && movement.quantity == transfer.quantity;
        if !same {
            return Err(LedgerError::MovementReused(transfer.id.clone()));
        }
        Ok(Some(
            movement
                .moved
                .into_iter()
                .map(|range| Block {
                    issuance_id: movement.issuance_id.clone(),
                    range,
                    account: transfer.to.clone(),
                    version: 0,
                })
                .collect(),
        ))
    }

    /// The issuance and block holding serial `number` of `namespace`, if any issuance claimed it.
    pub async fn locate(
        &self,
        namespace: &str,
        number: u64,
    ) -> Result<Option<(Issuance, Block)>, LedgerError> {
        let Some(claim) = self.claim_at_or_below(namespace, number).await? else {
            return Ok(None);
        };
        if !claim.range.contains(number) {
            return Ok(None);
        }
        let issuance_id = claim.issuance_id;
        let Some(issuance) = self.issuance(&issuance_id).await? else {
            return Err(TableError::Backend(format!(
                "claim of {namespace} names missing issuance {issuance_id}"
            ))
            .into());
        };
        match self.block_at(&issuance_id, number).await? {
            Some(block) => Ok(Some((issuance, block))),
            None => Err(TableError::Backend(format!(
                "issuance {issuance_id} has no block holding serial {number}"
            ))
            .into()),
        }
    }

    /// The claim in `namespace` with the highest first serial at or below `number`.
    async fn claim_at_or_below(
        &self,
        namespace: &str,
        number: u64,
    ) -> Result<Option<Claim>, LedgerError> {
        let last = self
            .last_at_or_below(
                keys::serial_claim(namespace, 0),
                keys::serial_claim(namespace, number),
            )
            .await?;
        Ok(last.map(items::parse).transpose()?)
    }

    /// The item of `from`'s partition with the highest sort key from `from` up to `to` (serials
    /// in keys sort as numbers, so this is the block or claim starting highest at or below `to`).
    async fn last_at_or_below(&self, from: Key, to: Key) -> Result<Option<Item>, TableError> {
        let query = Query::partition(Index::Primary, from.pk)
            .sort(SortKey::Between(from.sk, to.sk))
            .backward()
            .limit(1);
        Ok(self.table.query(&query).await?.items.into_iter().next())
    }

    async fn all(&self, query: Query) -> Result<Vec<Block>, LedgerError> {
        let found = items::query_all(self.table.as_ref(), &query).await?;
        Ok(found.iter().map(decode_block).collect::<Result<_, _>>()?)
    }
}

/// A movement planned on the blocks read: the operations, and where the credits end up.
#[derive(Debug)]
pub struct Plan {
    pub ops: Vec<WriteOp>,
    pub moved: Vec<Block>,
}

/// Plans a transfer over `candidates` (the source account's blocks): whole blocks in order, then
/// the lower part of one more, which keeps its key while the rest becomes a new block.
pub fn plan(candidates: &[Block], transfer: &Transfer) -> Result<Plan, LedgerError> {
    let available: u64 = candidates.iter().map(|b| b.range.len()).sum();
    if available < transfer.quantity {
        return Err(LedgerError::Insufficient {
            available,
            requested: transfer.quantity,
        });
    }
    let mut ops = Vec::new();
    let mut moved = Vec::new();
    let mut left = transfer.quantity;
    let to = transfer.to.encode();
    for block in candidates {
        if left == 0 {
            break;
        }
        let key = keys::credit_block(&block.issuance_id, block.range.first());
        let take = left.min(block.range.len());
        let part = block.range.head(take).expect("1 <= take <= len");
        let mut update = Update::new()
            .set("account", to.clone())
            .set(VERSION, block.version + 1)
            .set_index(keys::block_of_account(
                &to,
                &block.issuance_id,
                part.first(),
            ));
        if take < block.range.len() {
            update = update.set("last", part.last());
            let rest = block
                .range
                .tail(block.range.len() - take)
                .expect("1 <= rest < len");
            ops.push(
                WriteOp::put(block_item(&block.issuance_id, rest, &block.account, 1)?)
                    .when(Condition::NotExists),
            );
        }
        ops.push(
            WriteOp::update(key, update)
                .when(Condition::VersionIs(block.version))
                .when(Condition::Equals(
                    "account".into(),
                    json!(block.account.encode()),
                ))
                .when(Condition::Equals("last".into(), json!(block.range.last()))),
        );
        moved.push(Block {
            issuance_id: block.issuance_id.clone(),
            range: part,
            account: transfer.to.clone(),
            version: block.version + 1,
        });
        left -= take;
    }
    Ok(Plan { ops, moved })
}

/// Checks invariant 1 on an issuance's blocks (as [`Ledger::blocks`] returns them): sorted,
/// contiguous, disjoint, covering exactly the issued range. Returns what is wrong.
pub fn check_blocks(issuance: &Issuance, blocks: &[Block]) -> Result<(), String> {
    let range = issuance.range();
    let mut next = range.first();
    for block in blocks {
        if block.issuance_id != issuance.id {
            return Err(format!(
                "block {} belongs to {}",
                block.range, block.issuance_id
            ));
        }
        if block.range.first() != next {
            return Err(format!(
                "block {} starts where {next} was expected (a gap or an overlap)",
                block.range
            ));
        }
        next = block.range.last() + 1;
    }
    if next != range.last() + 1 {
        return Err(format!(
            "the blocks end at {} but the issuance covers {range}",
            next - 1
        ));
    }
    Ok(())
}

/// Refuses a movement that can never be made, before anything is read.
fn check_transfer(transfer: &Transfer) -> Result<(), LedgerError> {
    if transfer.quantity == 0 {
        return Err(LedgerError::Invalid(
            "a transfer moves at least one credit".into(),
        ));
    }
    if transfer.from.is_final() {
        return Err(LedgerError::Final(transfer.from.encode()));
    }
    if transfer.to == Account::Buffer {
        return Err(LedgerError::IntoBuffer);
    }
    if transfer.from == transfer.to {
        return Err(LedgerError::Invalid(
            "a transfer moves credits to another account".into(),
        ));
    }
    valid_id("movement id", &transfer.id)?;
    valid_id("issuance id", &transfer.issuance)?;
    transfer.from.validate()?;
    transfer.to.validate()
}

/// Ids the ledger stores in keys: letters, digits, `_`, `-` and `:`, at most 128. No `#`, which
/// separates key parts.
fn valid_id(what: &str, id: &str) -> Result<(), LedgerError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Invalid(format!(
            "{what} {id:?} must be 1 to 128 letters, digits, _, - or :"
        )))
    }
}

/// Waits before planning again: a random pause between 0.1 ms and a cap that doubles with the
/// attempt up to 50 ms, so contenders spread out. Also the pause of other writers that retry on
/// conflicts (orders).
pub async fn backoff(attempt: u32) {
    let cap_us = (2_000u64 << attempt.min(5)).min(50_000);
    let jitter = (ulid::Ulid::new().random() as u64) % cap_us;
    tokio::time::sleep(Duration::from_micros(100 + jitter)).await;
}

fn issuance_item(issuance: &Issuance) -> Result<Item, TableError> {
    let mut item = items::with_key(&keys::issuance(&issuance.id), issuance)?;
    keys::issuance_of_project(&issuance.project_id, issuance.issued_at, &issuance.id)
        .insert_into(&mut item);
    Ok(item)
}

/// A claim as stored: the range an issuance holds in a namespace.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claim {
    issuance_id: String,
    #[serde(flatten)]
    range: Range,
}

/// A block as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockItem {
    issuance_id: String,
    #[serde(flatten)]
    range: Range,
    account: String,
    version: u64,
}

fn claim_item(namespace: &str, range: Range, issuance_id: &str) -> Result<Item, TableError> {
    let claim = Claim {
        issuance_id: issuance_id.to_owned(),
        range,
    };
    items::with_key(&keys::serial_claim(namespace, range.first()), &claim)
}

fn block_item(
    issuance_id: &str,
    range: Range,
    account: &Account,
    version: u64,
) -> Result<Item, TableError> {
    let stored = BlockItem {
        issuance_id: issuance_id.to_owned(),
        range,
        account: account.encode(),
        version,
    };
    let mut item = items::with_key(&keys::credit_block(issuance_id, range.first()), &stored)?;
    keys::block_of_account(&stored.account, issuance_id, range.first()).insert_into(&mut item);
    Ok(item)
}

fn decode_block(item: &Item) -> Result<Block, TableError> {
    let stored: BlockItem = items::parse(item.clone())?;
    Ok(Block {
        account: Account::decode(&stored.account).ok_or_else(|| {
            TableError::Backend(format!("unknown ledger account {}", stored.account))
        })?,
        issuance_id: stored.issuance_id,
        range: stored.range,
        version: stored.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(first: u64, last: u64, version: u64) -> Block {
        Block {
            issuance_id: "iss_1".into(),
            range: Range::new(first, last).unwrap(),
            account: Account::Listing("lst_1".into()),
            version,
        }
    }

    fn transfer(quantity: u64) -> Transfer {
        Transfer {
            id: "mv_1".into(),
            from: Account::Listing("lst_1".into()),
            to: Account::Reserved("ord_1".into()),
            quantity,
            issuance: "iss_1".into(),
        }
    }

    #[test]
    fn accounts_round_trip_through_their_text() {
        for account in [
            Account::Inventory("ORG#org_1".into()),
            Account::Listing("lst_1".into()),
            Account::Reserved("ord_1".into()),
            Account::Holding("USER#usr_1".into()),
            Account::Buffer,
            Account::Frozen("dsp_1".into()),
            Account::Retired("ret_1".into()),
            Account::Cancelled("cnl_1".into()),
        ] {
            assert_eq!(Account::decode(&account.encode()), Some(account));
        }
        assert_eq!(Account::decode("listing:"), None);
        assert_eq!(Account::decode("nowhere:x"), None);
    }

    #[test]
    fn a_plan_moves_whole_blocks_then_splits_the_lower_part_of_the_last() {
        let candidates = [block(1, 10, 3), block(21, 40, 1)];
        let plan = plan(&candidates, &transfer(15)).unwrap();
        let moved: Vec<Range> = plan.moved.iter().map(|b| b.range).collect();
        assert_eq!(
            moved,
            [Range::new(1, 10).unwrap(), Range::new(21, 25).unwrap()]
        );
        // One update for the whole block; a put of the rest and an update for the split one.
        assert_eq!(plan.ops.len(), 3);
        match &plan.ops[1] {
            WriteOp::Put { item, conditions } => {
                assert_eq!(item["first"], json!(26));
                assert_eq!(item["last"], json!(40));
                assert_eq!(item["account"], json!("listing:lst_1"));
                assert_eq!(conditions, &[Condition::NotExists]);
            }
            other => panic!("expected the rest's put, got {other:?}"),
        }
        match &plan.ops[2] {
            WriteOp::Update { conditions, .. } => {
                assert!(conditions.contains(&Condition::VersionIs(1)));
            }
            other => panic!("expected the split block's update, got {other:?}"),
        }
    }

    #[test]
    fn a_plan_refuses_more_than_the_candidates_hold() {
        let error = plan(&[block(1, 10, 1)], &transfer(11)).unwrap_err();
        assert_eq!(
            error,
            LedgerError::Insufficient {
                available: 10,
                requested: 11
            }
        );
    }
}
