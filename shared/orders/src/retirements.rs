//! Retirements: a claim on credits of one holding, carried out once.
//!
//! A retirement moves through three states, each one conditional write:
//!
//! 1. `requested`: the request takes its tonnes from the holding's `unretired` count (a
//!    conditional decrement, so concurrent retirements from one holding never exceed it) and
//!    writes the record, in one write. An order placed with `retire: true` writes its
//!    retirements in the write that completes it.
//! 2. `retired`: the worker moves exactly that many credits, lowest serials first, from the
//!    holding's ledger account into the retirement's own (`retired:<retirementId>`, final: they
//!    never move again), and writes the serials, the time and the verification hash into the
//!    record, in one write. The ledger records the movement under `retire:<retirementId>`, so
//!    it happens once whatever the number of deliveries.
//! 3. `completed`: the certificate (PDF) is in the exports bucket and the record names it.
//!
//! A retirement not yet completed sits in the workflow's open index; the sweeper sends its
//! message again when it has not moved for a while, so a message lost between the write and the
//! send only delays it.
//!
//! The verification hash is SHA-256 over the record's claim ([`Claim`]): its JSON text with keys
//! sorted and no spaces. Anyone can recompute it from the public record.

use std::collections::BTreeMap;
use std::sync::Arc;

use amanar_core::keys;
use amanar_core::table::{
    Condition, Cursor, Index, Item, Query, Table, TableError, Update, WriteOp, items,
};
use amanar_core::workflow::{Flow, Status};
use amanar_marketplace::ledger::{Account, Ledger, LedgerError, Transfer};
use amanar_marketplace::serial::{Standard, Vintage};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::holdings::Holding;

/// Where a retirement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetirementStatus {
    /// Accepted: its tonnes are taken from the holding, the credits not moved yet.
    Requested,
    /// The credits are retired (exact serials, public record); the certificate is being made.
    Retired,
    /// The certificate is written.
    Completed,
    /// The credits could not be retired (the holding no longer had them); its tonnes went back
    /// to the holding's `unretired` count. `reasonFailed` says why.
    Failed,
}

impl Status for RetirementStatus {
    fn value(self) -> &'static str {
        match self {
            RetirementStatus::Requested => "requested",
            RetirementStatus::Retired => "retired",
            RetirementStatus::Completed => "completed",
            RetirementStatus::Failed => "failed",
        }
    }

    fn is_final(self) -> bool {
        matches!(self, RetirementStatus::Completed | RetirementStatus::Failed)
    }
}

/// Retirements run on the workflow: those not completed sit in its open index.
pub const FLOW: Flow = Flow {
    name: "retirement",
    open: keys::OPEN_RETIREMENTS,
};

/// A retirement as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retirement {
    pub retirement_id: String,
    /// Whose credits: `USER#<id>` or `ORG#<id>`. Never shown publicly.
    pub owner: String,
    /// Who asked (`user:<id>` or `key:<id>`). Never shown publicly.
    pub requested_by: String,
    pub holding_id: String,
    /// The order it came with, for orders placed with `retire: true`.
    #[serde(default)]
    pub order_id: Option<String>,
    pub project_id: String,
    pub project_name: String,
    pub issuance_id: String,
    #[schema(value_type = String)]
    pub standard: Standard,
    #[serde(default)]
    pub registry_project_id: Option<String>,
    #[serde(default)]
    pub registry_url: Option<String>,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    /// Tonnes retired.
    pub quantity: u64,
    /// Whose claim the retirement is.
    pub beneficiary: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub status: RetirementStatus,
    /// The serial blocks retired, in the registry's format, once retired.
    #[serde(default)]
    pub serials: Vec<String>,
    #[serde(default)]
    pub retired_at: Option<DateTime<Utc>>,
    /// SHA-256 of the claim (see [`Claim`]), once retired.
    #[serde(default)]
    pub verification_hash: Option<String>,
    /// The certificate's object key in the exports bucket, once completed.
    #[serde(default)]
    pub certificate_key: Option<String>,
    /// Why it failed, if it did.
    #[serde(default)]
    pub reason_failed: Option<String>,
    /// A digest of the request: the same `Idempotency-Key` with another request is refused.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub version: u64,
}

impl Retirement {
    /// The ledger account its credits end in.
    pub fn account(&self) -> Account {
        Account::Retired(self.retirement_id.clone())
    }

    /// The claim the verification hash covers, as it reads once retired.
    pub fn claim(&self) -> Option<Claim<'_>> {
        Some(Claim {
            retirement: self,
            retired_at: self.retired_at?,
        })
    }

    /// The item as written at request time.
    pub fn item(&self) -> Result<Item, TableError> {
        let mut item = items::with_key(&keys::retirement(&self.retirement_id), self)?;
        keys::retirement_of_owner(&self.owner, self.created_at, &self.retirement_id)
            .insert_into(&mut item);
        if !self.status.is_final() {
            FLOW.open_entry(self.updated_at, &self.retirement_id)
                .insert_into(&mut item);
        }
        Ok(item)
    }

    /// Where its certificate goes in the exports bucket.
    pub fn certificate_key_for(retirement_id: &str) -> String {
        format!("certificates/{retirement_id}.pdf")
    }
}

/// What a retirement claims, as the verification hash covers it.
pub struct Claim<'a> {
    retirement: &'a Retirement,
    retired_at: DateTime<Utc>,
}

impl Claim<'_> {
    /// The claim's fields, keys sorted: the text the hash is computed over.
    pub fn canonical(&self) -> String {
        let r = self.retirement;
        let fields: BTreeMap<&str, Value> = BTreeMap::from([
            ("retirementId", json!(r.retirement_id)),
            ("projectId", json!(r.project_id)),
            ("projectName", json!(r.project_name)),
            ("standard", json!(r.standard)),
            ("registryProjectId", json!(r.registry_project_id)),
            ("issuanceId", json!(r.issuance_id)),
            ("vintage", json!(r.vintage)),
            ("serials", json!(r.serials)),
            ("quantity", json!(r.quantity)),
            ("beneficiary", json!(r.beneficiary)),
            ("reason", json!(r.reason)),
            (
                "retiredAt",
                json!(self.retired_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
        ]);
        serde_json::to_string(&fields).expect("a claim serialises")
    }

    /// SHA-256 of [`Self::canonical`], hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }
}

/// A retirement to request on a holding.
#[derive(Debug, Clone)]
pub struct NewRetirement {
    pub retirement_id: String,
    pub holding: Holding,
    pub requested_by: String,
    pub quantity: u64,
    pub beneficiary: String,
    pub reason: Option<String>,
    pub registry_project_id: Option<String>,
    pub registry_url: Option<String>,
    pub fingerprint: String,
    pub order_id: Option<String>,
    pub now: DateTime<Utc>,
}

impl NewRetirement {
    /// The record as it is first written (`requested`).
    pub fn record(&self) -> Retirement {
        let h = &self.holding;
        Retirement {
            retirement_id: self.retirement_id.clone(),
            owner: h.owner.clone(),
            requested_by: self.requested_by.clone(),
            holding_id: h.holding_id.clone(),
            order_id: self.order_id.clone(),
            project_id: h.project_id.clone(),
            project_name: h.project_name.clone(),
            issuance_id: h.issuance_id.clone(),
            standard: h.standard,
            registry_project_id: self.registry_project_id.clone(),
            registry_url: self.registry_url.clone(),
            vintage: h.vintage,
            quantity: self.quantity,
            beneficiary: self.beneficiary.clone(),
            reason: self.reason.clone(),
            status: RetirementStatus::Requested,
            serials: Vec::new(),
            retired_at: None,
            verification_hash: None,
            certificate_key: None,
            reason_failed: None,
            fingerprint: self.fingerprint.clone(),
            created_at: self.now,
            updated_at: self.now,
            version: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetirementError {
    #[error("no such retirement")]
    NotFound,
    #[error("the holding has {available} t left to retire; {requested} t were asked for")]
    Insufficient { available: u64, requested: u64 },
    #[error("this Idempotency-Key requested another retirement")]
    KeyReused,
    #[error("the retirement's credits cannot be moved: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The attribute of a holding counting the tonnes no retirement has claimed yet.
pub const UNRETIRED: &str = "unretired";

/// The operations that request a retirement: take its tonnes from the holding's count, and
/// write the record. The holding's update comes first.
pub fn request_ops(new: &NewRetirement) -> Result<Vec<WriteOp>, TableError> {
    let quantity = i64::try_from(new.quantity).unwrap_or(i64::MAX);
    Ok(vec![
        WriteOp::update(
            keys::holding(&new.holding.holding_id),
            Update::new().add(UNRETIRED, -quantity),
        )
        .when(Condition::AtLeast(UNRETIRED.into(), quantity)),
        WriteOp::put(new.record().item()?).when(Condition::NotExists),
    ])
}

#[derive(Clone)]
pub struct Retirements {
    table: Arc<dyn Table>,
    ledger: Ledger,
}

impl Retirements {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self {
            ledger: Ledger::new(table.clone()),
            table,
        }
    }

    pub async fn get(&self, retirement_id: &str) -> Result<Option<Retirement>, TableError> {
        items::load(&*self.table, &keys::retirement(retirement_id)).await
    }

    async fn load(&self, retirement_id: &str) -> Result<Retirement, RetirementError> {
        self.get(retirement_id)
            .await?
            .ok_or(RetirementError::NotFound)
    }

    /// A page of an owner's retirements, newest first.
    pub async fn of_owner(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<Retirement>, Option<Cursor>), TableError> {
        let query = Query::partition(Index::Gsi1, keys::retirements_of(owner))
            .backward()
            .limit(limit)
            .after(cursor);
        items::parse_page(self.table.query(&query).await?)
    }

    /// Requests a retirement: the holding's tonnes and the record in one write. The same id
    /// requested again with the same request returns the stored record (`true` when this call
    /// wrote it); with another request it is [`RetirementError::KeyReused`].
    pub async fn request(
        &self,
        new: &NewRetirement,
    ) -> Result<(Retirement, bool), RetirementError> {
        if let Some(existing) = self.get(&new.retirement_id).await? {
            return same_request(existing, new).map(|r| (r, false));
        }
        match self.table.write(request_ops(new)?).await {
            Ok(()) => Ok((new.record(), true)),
            Err(TableError::ConditionFailed { index: 1, .. }) => {
                same_request(self.load(&new.retirement_id).await?, new).map(|r| (r, false))
            }
            Err(TableError::ConditionFailed { .. }) => {
                // Read again: a concurrent request with the same key may have taken them.
                if let Some(existing) = self.get(&new.retirement_id).await? {
                    return same_request(existing, new).map(|r| (r, false));
                }
                let available =
                    items::load::<Item>(&*self.table, &keys::holding(&new.holding.holding_id))
                        .await?
                        .and_then(|h| h.get(UNRETIRED).and_then(Value::as_u64))
                        .unwrap_or(0);
                Err(RetirementError::Insufficient {
                    available,
                    requested: new.quantity,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Retires the credits of a requested retirement (step 2); returns it as it is now. A
    /// retirement retired or completed before is returned as it is.
    pub async fn retire(
        &self,
        retirement_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Retirement, RetirementError> {
        let retirement = self.load(retirement_id).await?;
        if retirement.status != RetirementStatus::Requested {
            return Ok(retirement);
        }
        // Stored to the millisecond, as the verification text writes it.
        let now = now.trunc_subsecs(3);
        let issuance = self
            .ledger
            .issuance(&retirement.issuance_id)
            .await?
            .ok_or_else(|| {
                TableError::Backend(format!("issuance {} is gone", retirement.issuance_id))
            })?;
        let transfer = Transfer {
            id: format!("retire:{retirement_id}"),
            from: Account::holding(&retirement.owner, &retirement.holding_id),
            to: retirement.account(),
            quantity: retirement.quantity,
            issuance: retirement.issuance_id.clone(),
        };
        let retired = |planned: &[Vec<amanar_marketplace::Block>]| Retirement {
            status: RetirementStatus::Retired,
            serials: planned[0]
                .iter()
                .map(|b| issuance.serial_of(b.range))
                .collect(),
            retired_at: Some(now),
            updated_at: now,
            version: retirement.version + 1,
            ..retirement.clone()
        };
        let guards_for = |planned: &[Vec<amanar_marketplace::Block>]| {
            let done = retired(planned);
            let hash = done.claim().map(|c| c.hash());
            Ok(vec![
                FLOW.transition(
                    keys::retirement(retirement_id),
                    retirement_id,
                    RetirementStatus::Requested,
                    RetirementStatus::Retired,
                    Update::new()
                        .set("serials", json!(done.serials))
                        .set("retiredAt", json!(now))
                        .set("verificationHash", json!(hash)),
                    now,
                ),
            ])
        };
        match self
            .ledger
            .transfer_planned(std::slice::from_ref(&transfer), guards_for)
            .await
        {
            // The record as stored, not as planned here: when a concurrent delivery's write
            // landed first, the ledger answers from its movement record without writing, and
            // only the stored record has the time and hash that write fixed.
            Ok(_) => self.load(retirement_id).await,
            // Retired by a concurrent delivery (the status is the only condition; a sweeper's
            // nudge keeps it): read what it wrote.
            Err(LedgerError::Guard { .. }) => self.load(retirement_id).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a requested retirement that cannot be carried out, and gives its tonnes back to the
    /// holding, in one write. `false` when it had moved on.
    pub async fn fail(
        &self,
        retirement: &Retirement,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RetirementError> {
        let quantity = i64::try_from(retirement.quantity).unwrap_or(i64::MAX);
        let ops = vec![
            FLOW.transition(
                keys::retirement(&retirement.retirement_id),
                &retirement.retirement_id,
                RetirementStatus::Requested,
                RetirementStatus::Failed,
                Update::new().set("reasonFailed", reason),
                now,
            ),
            WriteOp::update(
                keys::holding(&retirement.holding_id),
                Update::new().add(UNRETIRED, quantity),
            )
            .when(Condition::Exists),
        ];
        match self.table.write(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records the certificate of a retired retirement (step 3). `false` when it had moved on.
    pub async fn complete(
        &self,
        retirement: &Retirement,
        certificate_key: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RetirementError> {
        let op = FLOW.transition(
            keys::retirement(&retirement.retirement_id),
            &retirement.retirement_id,
            RetirementStatus::Retired,
            RetirementStatus::Completed,
            Update::new().set("certificateKey", certificate_key),
            now,
        );
        Ok(Flow::apply(&*self.table, op).await?)
    }
}

fn same_request(existing: Retirement, new: &NewRetirement) -> Result<Retirement, RetirementError> {
    if existing.fingerprint == new.fingerprint && existing.owner == new.holding.owner {
        Ok(existing)
    } else {
        Err(RetirementError::KeyReused)
    }
}

/// Sends a retirement to the retirement worker (the `retirements` queue). Every sender (the
/// request, the purchase worker, the sweeper) goes through here; copies are harmless.
pub async fn enqueue(
    queue: &dyn amanar_core::Queue,
    retirement_id: &str,
) -> Result<(), amanar_core::QueueError> {
    use amanar_core::messages::{JobMessage, RetireCredits};
    let message = RetireCredits {
        retirement_id: retirement_id.to_owned(),
    };
    queue
        .send(
            amanar_core::QueueName::Retirements,
            &message.to_body(),
            std::time::Duration::ZERO,
        )
        .await
        .map(|_| ())
}

/// A vintage as a certificate writes it: `2021`, or `2020-01-01 to 2020-12-31`.
pub fn vintage_text(vintage: &Vintage) -> String {
    match vintage {
        Vintage::Year(year) => year.to_string(),
        Vintage::Period { start, end } => format!("{start} to {end}"),
    }
}
