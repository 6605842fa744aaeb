//! A transactional outbox, on the workflow mechanism: a message written in the same table write
//! as the state change it announces, sent right after that write, and sent by a sweeper if the
//! sender died (or its queue failed) in between. For producers that are not themselves driven by
//! a redelivered message (an HTTP request, a scheduled sweep): a queue consumer needs none, since
//! its own message comes back.
//!
//! Delivery is at least once: a sender that dies after sending and before deleting the item has
//! it sent again by the sweeper, so consumers deduplicate, as every consumer here does.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::messages::JobMessage;
use crate::table::{Table, TableError, WriteOp, items};
use crate::workflow::{Flow, Status, SweepPolicy, Verdict};
use crate::{Queue, QueueError, QueueName, keys};

/// The outbox's flow: every item is unfinished until sent, and then gone.
pub const FLOW: Flow = Flow {
    name: "outbox message",
    open: keys::OPEN_OUTBOX,
};

/// An item that has waited this long was left by a sender that did not finish.
pub const STALE_AFTER: TimeDelta = TimeDelta::seconds(30);

/// An outbox item's status: waiting to be sent (deleted once sent), or given up because no
/// queue would ever take it (kept, out of the sweeper's sight, with its reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutboxStatus {
    Pending,
    Undeliverable,
}

impl Status for OutboxStatus {
    fn value(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Undeliverable => "undeliverable",
        }
    }
    fn is_final(self) -> bool {
        self == OutboxStatus::Undeliverable
    }
}

/// A message waiting in the outbox, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outgoing {
    outbox_id: String,
    queue: String,
    body: String,
    status: OutboxStatus,
    created_at: DateTime<Utc>,
}

/// The id of the outbox item of the event `event` (the same for every attempt at the change).
pub fn id(event: &str) -> String {
    let digest = Sha256::digest(format!("outbox\0{event}"));
    format!("obx_{}", &hex::encode(digest)[..26])
}

/// The write that puts `message` for `queue` in the outbox as `id(event)`: add it to the write
/// of the change it announces, then [`send`] it once that write succeeded.
pub fn stage<M: JobMessage>(
    queue: QueueName,
    message: &M,
    event: &str,
    now: DateTime<Utc>,
) -> Result<WriteOp, TableError> {
    let outgoing = Outgoing {
        outbox_id: id(event),
        queue: queue.as_str().to_owned(),
        body: message.to_body(),
        status: OutboxStatus::Pending,
        created_at: now,
    };
    let mut item = items::with_key(&keys::outbox(&outgoing.outbox_id), &outgoing)?;
    FLOW.start(&mut item, &outgoing.outbox_id, OutboxStatus::Pending, now);
    Ok(WriteOp::put(item))
}

/// What sending an outbox item failed on.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// No queue will ever take it (a queue that no longer exists, a body the queue refuses).
    #[error("undeliverable outbox message: {0}")]
    Undeliverable(String),
}

/// Sends the outbox item `id` (if it is still there) and removes it.
pub async fn send(table: &dyn Table, queue: &dyn Queue, id: &str) -> Result<(), OutboxError> {
    match table.get(&keys::outbox(id)).await? {
        Some(item) => {
            let outgoing: Outgoing = items::parse(item)?;
            match outgoing.status {
                OutboxStatus::Pending => deliver(table, queue, outgoing).await,
                OutboxStatus::Undeliverable => Ok(()),
            }
        }
        None => Ok(()),
    }
}

async fn deliver(
    table: &dyn Table,
    queue: &dyn Queue,
    outgoing: Outgoing,
) -> Result<(), OutboxError> {
    let name = QueueName::named(&outgoing.queue)
        .ok_or_else(|| OutboxError::Undeliverable(format!("no queue {}", outgoing.queue)))?;
    match queue
        .send(name, &outgoing.body, std::time::Duration::ZERO)
        .await
    {
        Ok(_) => {}
        Err(QueueError::Invalid(why)) => return Err(OutboxError::Undeliverable(why)),
        Err(e) => return Err(e.into()),
    }
    table
        .write(vec![WriteOp::delete(keys::outbox(&outgoing.outbox_id))])
        .await?;
    Ok(())
}

/// Sends every item left in the outbox for [`STALE_AFTER`] or more; returns how many it sent.
pub async fn sweep(
    table: &dyn Table,
    queue: &dyn Queue,
    now: DateTime<Utc>,
    policy: SweepPolicy,
) -> Result<usize, TableError> {
    let report = FLOW
        .sweep(table, now, policy, |item| async move {
            let outgoing: Outgoing = items::parse(item)?;
            let (key, id) = (
                keys::outbox(&outgoing.outbox_id),
                outgoing.outbox_id.clone(),
            );
            match deliver(table, queue, outgoing).await {
                Ok(()) => Ok(Verdict::Nudged),
                // Out of the way of the messages behind it, kept for an operator to look at.
                Err(OutboxError::Undeliverable(why)) => {
                    tracing::error!(outbox = %id, reason = %why, "outbox message given up");
                    let op = FLOW.give_up(
                        key,
                        &id,
                        OutboxStatus::Pending,
                        OutboxStatus::Undeliverable,
                        &why,
                        now,
                    );
                    Flow::apply(table, op).await?;
                    Ok(Verdict::GaveUp)
                }
                Err(OutboxError::Table(e)) => Err(e),
                Err(OutboxError::Queue(e)) => Err(TableError::Unavailable(e.to_string())),
            }
        })
        .await?;
    Ok(report.moved())
}
