//! Orders: credits reserved on listings, paid for, then allocated to the buyer's holdings.
//!
//! ```text
//! pending_payment ──payment succeeded──> completed
//!        │ ──payment failed──> payment_failed
//!        │ ──unpaid past expiresAt (sweeper)──> expired
//! payment_failed | expired ──paid anyway (a late success)──> refunded
//! ```
//!
//! - **Placing** reserves every line in one all-or-nothing write: each listing's conditional
//!   decrement ([`reserve_guard`]: active, at the terms version the line was priced at, and with
//!   that many available) and the order itself (`NotExists`). A line the listing cannot fill
//!   refuses the whole order with what the listing has; nothing is written. The credits stay in
//!   the listing's ledger account, which now holds the listing's `available` count plus what its
//!   unpaid orders reserved.
//! - **Completing** (the purchase worker, on a succeeded payment) allocates: each line's credits
//!   move from the listing's account into a new holding of the buyer (lowest serials first, so
//!   the ranges stay contiguous), the holdings are written, and the order moves to `completed`
//!   with each line's exact serials, all in one write conditioned on the order still awaiting
//!   payment.
//! - **Releasing** (a failed payment, or the expiry sweeper) gives each line back to its listing's
//!   count (or, if the listing closed meanwhile, moves its credits to the seller's inventory) and
//!   moves the order to its final state, in one write conditioned the same way. Of a completion
//!   and a release exactly one happens.
//!
//! Why the serials are chosen at payment and not at the order: a reservation is then one
//! conditional decrement of one item, which concurrent buyers never have to plan again, so 200
//! buyers of one listing cost 200 writes and not a round of block reads per winner; the ledger's
//! block movement, which does contend, happens once per paid order in the worker. The order still
//! never oversells: the count is what may be sold, and the account always holds the count plus
//! the reservations.
//!
//! Allocation movements are named from the order and line (`allocate:<orderId>:<line>`), so a
//! redelivered message moves credits once.

use std::sync::Arc;

use amanar_core::keys;
use amanar_core::table::{
    Condition, Cursor, Index, Query, Table, TableError, Update, WriteOp, items,
};
use amanar_core::workflow::{Flow, Status};
use amanar_marketplace::ledger::{Account, Ledger, LedgerError, Transfer};
use amanar_marketplace::listings::{
    self, Listing, ListingStatus, Listings, closed_guard, release_guard, reserve_guard,
};
use amanar_marketplace::money::{self, Money};
use amanar_marketplace::projects::Projects;
use amanar_marketplace::serial::{Standard, Vintage};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::holdings::Holding;
use crate::retirements::NewRetirement;

/// The most lines one order holds. Completing writes, per line, a movement record, its block
/// moves, a holding and (for `retire: true`) a retirement, plus the order, in one write of at
/// most 100 operations: ten lines leave room for each to span several blocks of its listing.
pub const MAX_LINES: usize = 10;
/// The most tonnes one line buys.
pub const MAX_LINE_QUANTITY: u64 = amanar_marketplace::ledger::MAX_ISSUANCE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Credits reserved; waiting for the payment.
    PendingPayment,
    /// Paid; every line's credits are in the buyer's holdings.
    Completed,
    /// The payment was declined; the credits went back.
    PaymentFailed,
    /// Not paid in time; the credits went back.
    Expired,
    /// Paid after its credits went back: the payment was refunded in full.
    Refunded,
}

impl Status for OrderStatus {
    fn value(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Completed => "completed",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Expired => "expired",
            OrderStatus::Refunded => "refunded",
        }
    }

    fn is_final(self) -> bool {
        self != OrderStatus::PendingPayment
    }
}

/// Orders run on the workflow: unpaid ones sit in its open index, where the sweeper finds them.
pub const FLOW: Flow = Flow {
    name: "order",
    open: keys::OPEN_ORDERS,
};

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// 1, 2, ... in the order the request listed them.
    pub line: u32,
    pub listing_id: String,
    pub project_id: String,
    pub project_name: String,
    pub issuance_id: String,
    #[schema(value_type = String)]
    pub standard: Standard,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    /// Whole tonnes.
    pub quantity: u64,
    pub unit_price: Money,
    /// quantity x unit price, rounded to the currency's minor unit.
    #[serde(with = "money::total")]
    #[schema(value_type = Money)]
    pub price: Money,
    /// The exact serial blocks the buyer received, in the registry's format (once completed).
    #[serde(default)]
    pub serials: Vec<String>,
    /// The holding the line's credits went to (once completed).
    #[serde(default)]
    pub holding_id: Option<String>,
    /// The retirement of the line's credits, for an order placed with `retire: true` (once
    /// completed).
    #[serde(default)]
    pub retirement_id: Option<String>,
}

/// The payment of an order at its provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRef {
    /// `stripe` or `local`.
    pub provider: String,
    /// The provider's payment (Stripe: the PaymentIntent id).
    pub payment_id: String,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    /// Whose credits they become: `USER#<id>` or `ORG#<id>`.
    pub buyer: String,
    /// Who placed it (`user:<id>` or `key:<id>`).
    pub placed_by: String,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub currency: String,
    #[serde(with = "money::total")]
    pub subtotal: Money,
    /// The platform fee, shown apart from the credits' price.
    #[serde(with = "money::total")]
    pub fee: Money,
    pub fee_basis_points: u32,
    #[serde(with = "money::total")]
    pub total: Money,
    pub retire: bool,
    pub beneficiary: Option<String>,
    pub reason: Option<String>,
    pub payment: Option<PaymentRef>,
    /// A digest of the request that placed it: the same `Idempotency-Key` with another request
    /// is refused.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it ended without completing (declined, expired, refunded).
    #[serde(default)]
    pub reason_closed: Option<String>,
    #[serde(default)]
    pub version: u64,
    /// Whether placing it counted it among its buyer's orders awaiting payment (orders placed
    /// before the cap were not, and their end must not take from the count).
    #[serde(default)]
    pub counted_unpaid: bool,
}

impl Order {
    /// The holding a line's credits go to: derived from the order and line, so completing again
    /// finds the same one.
    pub fn holding_id(&self, line: u32) -> String {
        let tail = self.order_id.strip_prefix("ord_").unwrap_or(&self.order_id);
        format!("hld_{tail}_{line}")
    }

    /// The retirement of a line of an order placed with `retire: true`: derived from the order
    /// and line (completing again finds the same one) through a hash, so the public id names
    /// neither the order nor the holding.
    pub fn retirement_id(&self, line: u32) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("retirement\0{}\0{line}", self.order_id));
        format!("ret_{}", &hex::encode(digest)[..26])
    }
}

/// A line as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRequest {
    pub listing_id: String,
    pub quantity: u64,
}

/// An order to place, checked by the caller (lines, buyer's rights).
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: String,
    pub buyer: String,
    pub placed_by: String,
    pub lines: Vec<LineRequest>,
    pub retire: bool,
    pub beneficiary: Option<String>,
    pub reason: Option<String>,
    pub fingerprint: String,
    pub now: DateTime<Utc>,
}

/// How orders are priced and how long they wait.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// How long an unpaid order holds its credits.
    pub ttl: TimeDelta,
    /// The platform fee in basis points of the credits' price (500 = 5 %).
    pub fee_basis_points: u32,
    /// Payment method types offered (`card` first).
    pub payment_methods: Vec<String>,
    /// Most orders one buyer may have awaiting payment at once: unpaid orders hold credits
    /// nobody else can buy, so one account cannot hold a listing's stock for the order lifetime.
    pub max_unpaid: u32,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            ttl: TimeDelta::minutes(30),
            fee_basis_points: 500,
            payment_methods: vec!["card".into()],
            max_unpaid: 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("no such order")]
    NotFound,
    #[error("listing {0} does not exist or is not for sale")]
    ListingNotFound(String),
    #[error("listing {listing_id} is {status}")]
    ListingUnavailable {
        listing_id: String,
        status: &'static str,
    },
    #[error("listing {listing_id} has {available} t available; {requested} t were asked for")]
    Insufficient {
        listing_id: String,
        available: u64,
        requested: u64,
    },
    #[error("listing {0} sells the buyer's own credits")]
    OwnListing(String),
    #[error("an order is paid in one currency: {0} and {1}")]
    Currencies(String, String),
    #[error("the order's amount is too large")]
    TooLarge,
    #[error("this Idempotency-Key placed another order")]
    KeyReused,
    #[error("the order is {0}")]
    State(&'static str),
    #[error("the payment does not match the order: {0}")]
    Mismatch(String),
    #[error("the credits kept moving under concurrent orders; nothing was written")]
    Contended,
    #[error("the buyer has {0} orders awaiting payment, the most at once")]
    TooManyUnpaid(u32),
    /// The payment is neither paid nor cancellable yet (processing).
    #[error("{0}")]
    Unsettled(String),
    #[error(transparent)]
    Ledger(LedgerError),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl From<LedgerError> for OrderError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::Table(e) => OrderError::Table(e),
            LedgerError::Contended => OrderError::Contended,
            other => OrderError::Ledger(other),
        }
    }
}

/// How often placing is tried again after a listing changed under it.
const ATTEMPTS: usize = 16;

/// What completing an order did.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Completed now.
    Completed(Order),
    /// Completed before (a repeated or late event).
    AlreadyCompleted(Order),
    /// Its credits went back before the payment arrived: the payment must be refunded.
    PaidAfterRelease(Order),
    /// Refunded already.
    AlreadyRefunded(Order),
}

/// The write that counts one more order awaiting payment for `buyer`, refused (as a failed
/// condition) when the buyer already has `max`. Completing and releasing take it off again in
/// the order's own move ([`uncounted`]), so the count is exact.
fn counted(buyer: &str, max: u32) -> WriteOp {
    WriteOp::update(keys::unpaid_orders(buyer), Update::new().add(UNPAID, 1))
        .when(Condition::AtMost(UNPAID.into(), i64::from(max) - 1))
}

/// The write that takes `order` off its buyer's count as it stops awaiting payment; none for an
/// order placed before the count existed.
fn uncounted(order: &Order) -> Option<WriteOp> {
    order.counted_unpaid.then(|| {
        WriteOp::update(
            keys::unpaid_orders(&order.buyer),
            Update::new().add(UNPAID, -1),
        )
    })
}

/// The attribute of a buyer's count of orders awaiting payment.
const UNPAID: &str = "unpaid";

/// Whether releasing an order tells its buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// By a notice (payment failed, order expired) through the outbox.
    Buyer,
    /// Not at all: the buyer is being answered already (a payment refused while placing).
    Nobody,
}

/// Orders over the Table port.
#[derive(Clone)]
pub struct Orders {
    table: Arc<dyn Table>,
    ledger: Ledger,
    listings: Listings,
    projects: Projects,
}

impl Orders {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            ledger: Ledger::new(table.clone()),
            listings: Listings::new(table.clone()),
            projects: Projects::new(table.clone()),
            table,
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub async fn get(&self, order_id: &str) -> Result<Option<Order>, OrderError> {
        Ok(items::load(&*self.table, &keys::order(order_id)).await?)
    }

    async fn load(&self, order_id: &str) -> Result<Order, OrderError> {
        self.get(order_id).await?.ok_or(OrderError::NotFound)
    }

    /// A page of a buyer's orders, newest first.
    pub async fn of_buyer(
        &self,
        buyer: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Order>, Option<Cursor>), OrderError> {
        let query = Query::partition(Index::Gsi1, keys::orders_of(buyer))
            .backward()
            .limit(limit)
            .after(cursor);
        Ok(items::parse_page(self.table.query(&query).await?)?)
    }

    /// Places an order: reserves every line and writes the order `pending_payment`, all in one
    /// write, or refuses it with the first line that cannot be filled. Placing an order id again
    /// with the same request returns the stored order; with another request it is
    /// [`OrderError::KeyReused`].
    pub async fn place(
        &self,
        new: NewOrder,
        settings: &OrderSettings,
    ) -> Result<Order, OrderError> {
        if let Some(existing) = self.get(&new.order_id).await? {
            return same_request(existing, &new);
        }
        for attempt in 0..ATTEMPTS {
            let mut listed = Vec::with_capacity(new.lines.len());
            for line in &new.lines {
                let listing = self
                    .listings
                    .get(&line.listing_id)
                    .await
                    .map_err(listing_error)?
                    .ok_or_else(|| OrderError::ListingNotFound(line.listing_id.clone()))?;
                check_line(&listing, line, &new.buyer)?;
                listed.push(listing);
            }
            let order = self.priced(&new, &listed, settings).await?;
            let mut ops: Vec<WriteOp> = listed
                .iter()
                .zip(&order.lines)
                .map(|(listing, line)| {
                    reserve_guard(&listing.id, line.quantity, listing.version, new.now)
                })
                .collect();
            ops.push(WriteOp::put(order_item(&order)?).when(Condition::NotExists));
            let cap = ops.len();
            ops.push(counted(&new.buyer, settings.max_unpaid));
            match self.table.write(ops).await {
                Ok(()) => return Ok(order),
                // A listing sold, changed price or closed since it was read: read again (the
                // checks above then say why, or the line is priced at the new terms).
                Err(TableError::ConditionFailed { index, .. }) if index < order.lines.len() => {}
                Err(TableError::ConditionFailed { index, .. }) if index == cap => {
                    return Err(OrderError::TooManyUnpaid(settings.max_unpaid));
                }
                // A concurrent request with the same key placed it first.
                Err(TableError::ConditionFailed { .. }) => {
                    return same_request(self.load(&new.order_id).await?, &new);
                }
                Err(TableError::TransactionConflict) => {
                    amanar_marketplace::ledger::backoff(attempt as u32).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrderError::Contended)
    }

    /// The order as it would be written: each line priced at its listing's terms.
    async fn priced(
        &self,
        new: &NewOrder,
        listed: &[Listing],
        settings: &OrderSettings,
    ) -> Result<Order, OrderError> {
        let currency = listed[0].unit_price.currency();
        let mut lines = Vec::with_capacity(listed.len());
        let mut subtotal = listed[0].unit_price.zero_like();
        for (i, (listing, request)) in listed.iter().zip(&new.lines).enumerate() {
            if listing.unit_price.currency() != currency {
                return Err(OrderError::Currencies(
                    currency.into(),
                    listing.unit_price.currency().into(),
                ));
            }
            let price = listing
                .unit_price
                .times(request.quantity)
                .ok_or(OrderError::TooLarge)?;
            subtotal = subtotal.plus(&price).ok_or(OrderError::TooLarge)?;
            let project_name = self
                .projects
                .get(&listing.project_id)
                .await
                .map_err(|e| OrderError::Table(TableError::Backend(e.to_string())))?
                .map(|p| p.fields.name)
                .unwrap_or_default();
            lines.push(OrderLine {
                line: i as u32 + 1,
                listing_id: listing.id.clone(),
                project_id: listing.project_id.clone(),
                project_name,
                issuance_id: listing.issuance_id.clone(),
                standard: listing.standard,
                vintage: listing.vintage,
                quantity: request.quantity,
                unit_price: listing.unit_price,
                price,
                serials: Vec::new(),
                holding_id: None,
                retirement_id: None,
            });
        }
        let fee = subtotal
            .share(settings.fee_basis_points)
            .ok_or(OrderError::TooLarge)?;
        let total = subtotal.plus(&fee).ok_or(OrderError::TooLarge)?;
        // Every amount must read back as a stored total (the total is the largest of them).
        if !money::total::fits(&total) {
            return Err(OrderError::TooLarge);
        }
        Ok(Order {
            order_id: new.order_id.clone(),
            buyer: new.buyer.clone(),
            placed_by: new.placed_by.clone(),
            status: OrderStatus::PendingPayment,
            lines,
            currency: currency.to_owned(),
            subtotal,
            fee,
            fee_basis_points: settings.fee_basis_points,
            total,
            retire: new.retire,
            beneficiary: new.beneficiary.clone(),
            reason: new.reason.clone(),
            payment: None,
            fingerprint: new.fingerprint.clone(),
            created_at: new.now,
            updated_at: new.now,
            expires_at: new.now + settings.ttl,
            completed_at: None,
            reason_closed: None,
            version: 1,
            counted_unpaid: true,
        })
    }

    /// Records the order's payment, once. The same payment again is a no-op.
    pub async fn attach_payment(
        &self,
        order: &Order,
        payment: PaymentRef,
        now: DateTime<Utc>,
    ) -> Result<Order, OrderError> {
        if order.payment.as_ref() == Some(&payment) {
            return Ok(order.clone());
        }
        if order.payment.is_some() {
            return Err(OrderError::Mismatch("the order has another payment".into()));
        }
        let status = OrderStatus::PendingPayment;
        let op = FLOW.transition(
            keys::order(&order.order_id),
            &order.order_id,
            status,
            status,
            Update::new().set("payment", json!(payment)),
            now,
        );
        match self
            .table
            .write(vec![Flow::as_seen(op, &order_item(order)?)])
            .await
        {
            Ok(()) => Ok(Order {
                payment: Some(payment),
                updated_at: now,
                version: order.version + 1,
                ..order.clone()
            }),
            // Moved meanwhile (paid, expired, or a concurrent attach): read it as it is.
            Err(TableError::ConditionFailed { .. }) => {
                let current = self.load(&order.order_id).await?;
                match &current.payment {
                    Some(p) if *p == payment => Ok(current),
                    Some(_) => Err(OrderError::Mismatch("the order has another payment".into())),
                    None => Err(OrderError::State(current.status.value())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Completes a paid order: each line's reserve moves into a new holding of the buyer, the
    /// holdings are written and the order moves to `completed` with its serials, in one write.
    /// `payment_id`, `amount_minor` and `currency` are what the provider reported; a payment for
    /// another amount or of another payment is refused ([`OrderError::Mismatch`]).
    pub async fn complete(
        &self,
        order_id: &str,
        payment_id: &str,
        amount_minor: i64,
        currency: &str,
        now: DateTime<Utc>,
    ) -> Result<Completion, OrderError> {
        let order = self.load(order_id).await?;
        if let Some(payment) = &order.payment
            && payment.payment_id != payment_id
        {
            return Err(OrderError::Mismatch(format!(
                "payment {payment_id} is not the order's ({})",
                payment.payment_id
            )));
        }
        let provider = order.payment.as_ref().map_or("", |p| p.provider.as_str());
        let expected = crate::payments::provider_minor_units(provider, &order.total);
        if amount_minor != expected || !currency.eq_ignore_ascii_case(&order.currency) {
            return Err(OrderError::Mismatch(format!(
                "{amount_minor} {currency} paid for a total of {}",
                order.total
            )));
        }
        match order.status {
            OrderStatus::Completed => return Ok(Completion::AlreadyCompleted(order)),
            OrderStatus::Refunded => return Ok(Completion::AlreadyRefunded(order)),
            OrderStatus::PaymentFailed | OrderStatus::Expired => {
                return Ok(Completion::PaidAfterRelease(order));
            }
            OrderStatus::PendingPayment => {}
        }
        let owner = order.buyer.clone();
        // An order placed with `retire: true` writes its retirements with the completion; the
        // record names the project's registry.
        let mut registries = Vec::with_capacity(order.lines.len());
        if order.retire {
            for line in &order.lines {
                let project = self
                    .projects
                    .get(&line.project_id)
                    .await
                    .map_err(|e| OrderError::Table(TableError::Backend(e.to_string())))?;
                registries.push(project.map_or((None, None), |p| {
                    (p.fields.registry_project_id, p.fields.registry_url)
                }));
            }
        }
        let mut issuances = Vec::with_capacity(order.lines.len());
        let mut transfers = Vec::with_capacity(order.lines.len());
        for line in &order.lines {
            let issuance = self
                .ledger
                .issuance(&line.issuance_id)
                .await?
                .ok_or_else(|| {
                    TableError::Backend(format!("issuance {} is gone", line.issuance_id))
                })?;
            issuances.push(issuance);
            transfers.push(Transfer {
                id: format!("allocate:{order_id}:{}", line.line),
                from: Account::Listing(line.listing_id.clone()),
                to: Account::holding(&owner, &order.holding_id(line.line)),
                quantity: line.quantity,
                issuance: line.issuance_id.clone(),
            });
        }
        // The lines as completed, with the serials each attempt's plan allocates.
        let completed_lines = |planned: &[Vec<amanar_marketplace::Block>]| {
            let mut lines = order.lines.clone();
            for ((line, blocks), issuance) in lines.iter_mut().zip(planned).zip(&issuances) {
                line.serials = blocks.iter().map(|b| issuance.serial_of(b.range)).collect();
                line.holding_id = Some(order.holding_id(line.line));
                if order.retire {
                    line.retirement_id = Some(order.retirement_id(line.line));
                }
            }
            lines
        };
        let guards_for = |planned: &[Vec<amanar_marketplace::Block>]| {
            let lines = completed_lines(planned);
            let mut guards = Vec::with_capacity(2 * lines.len() + 1);
            for (i, line) in lines.iter().enumerate() {
                let holding = Holding {
                    holding_id: order.holding_id(line.line),
                    owner: owner.clone(),
                    order_id: order_id.to_owned(),
                    line: line.line,
                    project_id: line.project_id.clone(),
                    project_name: line.project_name.clone(),
                    issuance_id: line.issuance_id.clone(),
                    standard: line.standard,
                    vintage: line.vintage,
                    quantity: line.quantity,
                    serials: line.serials.clone(),
                    acquired_at: now,
                    unretired: if order.retire { 0 } else { line.quantity },
                };
                guards.push(WriteOp::put(holding.item()?).when(Condition::NotExists));
                if order.retire {
                    let (registry_project_id, registry_url) = registries[i].clone();
                    let retirement = NewRetirement {
                        retirement_id: order.retirement_id(line.line),
                        requested_by: order.placed_by.clone(),
                        quantity: line.quantity,
                        beneficiary: order.beneficiary.clone().unwrap_or_default(),
                        reason: order.reason.clone(),
                        registry_project_id,
                        registry_url,
                        fingerprint: order.fingerprint.clone(),
                        order_id: Some(order_id.to_owned()),
                        now,
                        holding,
                    };
                    guards
                        .push(WriteOp::put(retirement.record().item()?).when(Condition::NotExists));
                }
            }
            let lines =
                serde_json::to_value(&lines).map_err(|e| TableError::Invalid(e.to_string()))?;
            guards.push(
                FLOW.transition(
                    keys::order(order_id),
                    order_id,
                    OrderStatus::PendingPayment,
                    OrderStatus::Completed,
                    Update::new()
                        .set("lines", lines)
                        .set("completedAt", json!(now)),
                    now,
                ),
            );
            guards.extend(uncounted(&order));
            Ok(guards)
        };
        let order_op = if order.retire { 2 } else { 1 } * order.lines.len();
        match self.ledger.transfer_planned(&transfers, guards_for).await {
            Ok(moved) => Ok(Completion::Completed(Order {
                status: OrderStatus::Completed,
                lines: completed_lines(&moved),
                completed_at: Some(now),
                updated_at: now,
                version: order.version + 1,
                ..order
            })),
            // Released or completed meanwhile: say what it is now.
            Err(LedgerError::Guard { index }) if index == order_op => {
                Box::pin(self.complete(order_id, payment_id, amount_minor, currency, now)).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives an unpaid order's credits back and moves it to `to` (`payment_failed` or
    /// `expired`) with `reason`. `false` when the order was no longer awaiting payment (paid or
    /// released first). `seen`, when given, is the version the caller decided on: an order that
    /// moved since (a payment attached meanwhile) is left alone. With [`Tell::Buyer`] the
    /// buyer's notice goes into the outbox in the same write, for the caller to send.
    #[allow(clippy::too_many_arguments)]
    pub async fn release(
        &self,
        order_id: &str,
        to: OrderStatus,
        reason: &str,
        tell: Tell,
        seen: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<bool, OrderError> {
        debug_assert!(to.is_final() && to != OrderStatus::Completed);
        for _ in 0..ATTEMPTS {
            let order = self.load(order_id).await?;
            if order.status != OrderStatus::PendingPayment
                || seen.is_some_and(|v| v != order.version)
            {
                return Ok(false);
            }
            let mut transfers = Vec::new();
            let mut guards = Vec::with_capacity(order.lines.len() + 1);
            for line in &order.lines {
                let listing = self
                    .listings
                    .get(&line.listing_id)
                    .await
                    .map_err(listing_error)?
                    .ok_or_else(|| {
                        TableError::Backend(format!("listing {} is gone", line.listing_id))
                    })?;
                match listing.status {
                    // The count went back to the seller at close, without what was reserved:
                    // those credits follow it now.
                    ListingStatus::Closed => {
                        transfers.push(Transfer {
                            id: format!("release:{order_id}:{}", line.line),
                            from: Account::Listing(listing.id.clone()),
                            to: Account::Inventory(listing.seller.clone()),
                            quantity: line.quantity,
                            issuance: line.issuance_id.clone(),
                        });
                        guards.push(closed_guard(&listing.id));
                    }
                    open => guards.push(release_guard(&listing.id, line.quantity, open, now)),
                }
            }
            guards.push(FLOW.transition(
                keys::order(order_id),
                order_id,
                OrderStatus::PendingPayment,
                to,
                Update::new().set("reasonClosed", reason),
                now,
            ));
            let order_op = guards.len() - 1;
            guards.extend(uncounted(&order));
            // The buyer's notice, into the outbox in the same write (after the guards: it has
            // no condition), so a crash after the release cannot lose it.
            let released = Order {
                status: to,
                updated_at: now,
                ..order.clone()
            };
            if tell == Tell::Buyer
                && let Some(notice) = crate::notices::of_order(&released, now)
            {
                guards.push(notice.staged(now)?);
            }
            let outcome = if transfers.is_empty() {
                match self.table.write(guards).await {
                    Ok(()) => Ok(()),
                    Err(TableError::ConditionFailed { index, .. }) => {
                        Err(LedgerError::Guard { index })
                    }
                    Err(e) => Err(LedgerError::Table(e)),
                }
            } else {
                self.ledger
                    .transfer_all(&transfers, &guards)
                    .await
                    .map(|_| ())
            };
            match outcome {
                Ok(()) => return Ok(true),
                // A listing paused, resumed or closed since it was read: read again.
                Err(LedgerError::Guard { index }) if index < order_op => {}
                Err(LedgerError::Guard { .. }) => return Ok(false),
                Err(LedgerError::Table(TableError::TransactionConflict)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrderError::Contended)
    }

    /// Records that a payment which arrived after the order's credits went back was refunded.
    pub async fn mark_refunded(
        &self,
        order: &Order,
        refund_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, OrderError> {
        let op = FLOW.transition(
            keys::order(&order.order_id),
            &order.order_id,
            order.status,
            OrderStatus::Refunded,
            Update::new().set("refundId", refund_id).set(
                "reasonClosed",
                "paid after the reservation was released; refunded in full",
            ),
            now,
        );
        Ok(Flow::apply(&*self.table, op).await?)
    }
}

/// The order's item: the order, its entry among its buyer's orders and, while unpaid, among the
/// open orders.
fn order_item(order: &Order) -> Result<amanar_core::table::Item, TableError> {
    let mut item = items::with_key(&keys::order(&order.order_id), order)?;
    keys::order_of_buyer(&order.buyer, order.created_at, &order.order_id).insert_into(&mut item);
    if !order.status.is_final() {
        FLOW.open_entry(order.updated_at, &order.order_id)
            .insert_into(&mut item);
    }
    item.insert("version".into(), json!(order.version));
    Ok(item)
}

fn same_request(existing: Order, new: &NewOrder) -> Result<Order, OrderError> {
    if existing.fingerprint == new.fingerprint && existing.buyer == new.buyer {
        Ok(existing)
    } else {
        Err(OrderError::KeyReused)
    }
}

fn check_line(listing: &Listing, line: &LineRequest, buyer: &str) -> Result<(), OrderError> {
    if listing.status != ListingStatus::Active {
        return Err(match listing.status {
            // Closed listings are out of the catalogue: as if they did not exist.
            ListingStatus::Closed => OrderError::ListingNotFound(listing.id.clone()),
            other => OrderError::ListingUnavailable {
                listing_id: listing.id.clone(),
                status: other.as_str(),
            },
        });
    }
    if listing.seller == buyer {
        return Err(OrderError::OwnListing(listing.id.clone()));
    }
    if listing.available < line.quantity {
        return Err(OrderError::Insufficient {
            listing_id: listing.id.clone(),
            available: listing.available,
            requested: line.quantity,
        });
    }
    Ok(())
}

fn listing_error(error: listings::ListingError) -> OrderError {
    match error {
        listings::ListingError::Table(e) => OrderError::Table(e),
        other => OrderError::Table(TableError::Backend(other.to_string())),
    }
}
