//! One mechanism for records that move through states and must never stall (uploads, activity
//! imports; next orders with expiring reservations, retirements, risk assessments, reports).
//!
//! - A record carries its `status`, a `version` and `updatedAt`.
//! - Every move is a [`Flow::transition`]: one conditional write that leaves exactly the status
//!   it names (so of two concurrent moves to another status one wins), bumps the version and
//!   stamps the time; a move decided from an earlier read also names the version it saw
//!   ([`Flow::as_seen`]), so it loses to any move in between.
//! - While its status is not final the record sits in its flow's index of unfinished records
//!   (GSI2, sorted by last move); the final move takes it out.
//! - [`Flow::sweep`] reads every page of records that have not moved for a while, within a time
//!   budget, and hands each to the flow's own visit, which waits, nudges ([`Flow::nudge`]: counted
//!   in `sweeps`, and out of sight for another period) or gives up with a recorded reason
//!   ([`Flow::give_up`]).

use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::keys;
use crate::table::{
    Condition, Index, IndexKey, Item, Key, Query, SortKey, Table, TableError, Update, WriteOp,
};

/// The attribute that counts a record's nudges.
pub const SWEEPS: &str = "sweeps";

/// A record's status as the workflow sees it: its stored value and whether it is final.
pub trait Status: Copy + std::fmt::Debug {
    /// The stored value (`"processing"`).
    fn value(self) -> &'static str;
    fn is_final(self) -> bool;
}

/// A kind of record that runs on the workflow.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    /// What its records are, for logs ("activity import").
    pub name: &'static str,
    /// The GSI2 partition of its unfinished records ([`keys::OPEN_IMPORTS`]).
    pub open: &'static str,
}

/// How a sweep looks for stuck records.
#[derive(Debug, Clone, Copy)]
pub struct SweepPolicy {
    /// A record that has not moved for this long is visited.
    pub stale_after: TimeDelta,
    /// Most records one sweep reads.
    pub limit: usize,
    /// How long one sweep may work; the next run goes on from where it stopped.
    pub budget: Duration,
}

/// What a visit did with one stale record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Left as it is: something else will move it (or a later sweep will).
    Waiting,
    /// Sent on its way again.
    Nudged,
    /// Moved to a final status with a reason.
    GaveUp,
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub visited: usize,
    pub nudged: usize,
    pub gave_up: usize,
    /// Visits that failed; logged, and left to the next sweep.
    pub failed: usize,
    /// The sweep stopped at its time budget before visiting every stale record.
    pub out_of_budget: bool,
}

impl SweepReport {
    /// How many records the sweep moved.
    pub fn moved(&self) -> usize {
        self.nudged + self.gave_up
    }
}

impl Flow {
    /// A record's entry among the flow's unfinished records, by when it last moved.
    pub fn open_entry(&self, moved_at: DateTime<Utc>, id: &str) -> IndexKey {
        keys::unfinished(self.open, moved_at, id)
    }

    /// Prepares a new record's item: version 1, and its open entry unless it starts final.
    pub fn start(&self, item: &mut Item, id: &str, status: impl Status, moved_at: DateTime<Utc>) {
        item.insert(crate::table::VERSION.into(), json!(1));
        if !status.is_final() {
            self.open_entry(moved_at, id).insert_into(item);
        }
    }

    /// The write that moves record `key` (id `id`) from `from` to `to` with `changes`. It applies
    /// only while the record is in `from`; it bumps `version`, stamps `updatedAt` and keeps the
    /// record in the open index until `to` is final.
    pub fn transition<S: Status>(
        &self,
        key: Key,
        id: &str,
        from: S,
        to: S,
        changes: Update,
        now: DateTime<Utc>,
    ) -> WriteOp {
        let mut update = changes
            .set("status", to.value())
            .set("updatedAt", json!(now))
            .add(crate::table::VERSION, 1);
        update = if to.is_final() {
            update.remove_index(Index::Gsi2)
        } else {
            update.set_index(self.open_entry(now, id))
        };
        WriteOp::update(key, update).when(Condition::Equals("status".into(), json!(from.value())))
    }

    /// Applies a transition alone; `false` when the record had already left the status it names
    /// (another delivery or sweep moved it first).
    pub async fn apply(table: &dyn Table, op: WriteOp) -> Result<bool, TableError> {
        match table.write(vec![op]).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Counts a nudge of a record in `status`: it stays where it is, one more in `sweeps`, and
    /// out of the sweeper's sight for another `stale_after`.
    pub fn nudge<S: Status>(&self, key: Key, id: &str, status: S, now: DateTime<Utc>) -> WriteOp {
        self.transition(key, id, status, status, Update::new().add(SWEEPS, 1), now)
    }

    /// Moves a stuck record from `from` to the final status `to`, recording why.
    pub fn give_up<S: Status>(
        &self,
        key: Key,
        id: &str,
        from: S,
        to: S,
        reason: &str,
        now: DateTime<Utc>,
    ) -> WriteOp {
        debug_assert!(to.is_final(), "giving up ends in a final status");
        self.transition(key, id, from, to, Update::new().set("reason", reason), now)
    }

    /// Makes `op` apply only to the record exactly as it was read in `seen` (its version), for a
    /// move decided from an earlier read, such as a sweeper's: a record that moved meanwhile,
    /// even to the same status, is left alone. Records stored before versions keep the status
    /// condition alone.
    pub fn as_seen(op: WriteOp, seen: &Item) -> WriteOp {
        match seen.get(crate::table::VERSION).and_then(Value::as_u64) {
            Some(version) => op.when(Condition::VersionIs(version)),
            None => op,
        }
    }

    /// How often a stored record has been nudged.
    pub fn sweeps(item: &Item) -> i64 {
        item.get(SWEEPS).and_then(Value::as_i64).unwrap_or(0)
    }

    /// Visits the records that have not moved for `policy.stale_after`, oldest first. Reads
    /// every page (records a visit leaves waiting must not hide the stuck ones behind them), up to
    /// `policy.limit`, and stops visiting at `policy.budget`. A failed visit is logged and counted;
    /// the sweep goes on.
    pub async fn sweep<F, Fut>(
        &self,
        table: &dyn Table,
        now: DateTime<Utc>,
        policy: SweepPolicy,
        mut visit: F,
    ) -> Result<SweepReport, TableError>
    where
        F: FnMut(Item) -> Fut,
        Fut: Future<Output = Result<Verdict, TableError>>,
    {
        let started = Instant::now();
        let query = Query::partition(Index::Gsi2, self.open)
            .sort(SortKey::LessThan(keys::sortable_time(
                now - policy.stale_after,
            )))
            .limit(100);
        let mut stale = Vec::new();
        let mut cursor = None;
        loop {
            let page = table.query(&query.clone().after(cursor)).await?;
            stale.extend(page.items);
            cursor = page.next;
            if cursor.is_none() || stale.len() >= policy.limit {
                break;
            }
        }
        stale.truncate(policy.limit);
        let mut report = SweepReport::default();
        for item in stale {
            if started.elapsed() > policy.budget {
                tracing::warn!(
                    flow = self.name,
                    "sweep stopped at its time budget; the next run goes on"
                );
                report.out_of_budget = true;
                break;
            }
            report.visited += 1;
            match visit(item).await {
                Ok(Verdict::Waiting) => {}
                Ok(Verdict::Nudged) => report.nudged += 1,
                Ok(Verdict::GaveUp) => report.gave_up += 1,
                Err(error) => {
                    report.failed += 1;
                    tracing::warn!(flow = self.name, %error, "could not sweep a record; the next run retries");
                }
            }
        }
        Ok(report)
    }
}
