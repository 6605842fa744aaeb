//! `RedbQueue`: the Queue port on the same redb database as the table, so queued work survives a
//! restart and a crash loses nothing committed.
//!
//! Layout: `queue_messages` maps `queue 0x00 id` to the message state; `queue_ready` indexes every
//! message by `queue 0x00 visible_at_ms(be u64) id`, so a receive reads the due messages in order.
//! Receipts are `id.delivery`, so a receipt from an earlier delivery cannot delete a redelivered
//! message.
//!
//! A restart redelivers at once what the previous process had received and not finished (it
//! died, or was stopped, mid-message), instead of after the visibility timeout: the database is
//! held by one process, so no consumer of those deliveries is left. A message a consumer
//! rescheduled (`change_visibility`, the retry backoff) keeps its time.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::queue::{self, Queue, QueueError, QueueName, Received};
use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::StoreError;
use crate::commit::{Committer, Staged, Uncommitted};

impl From<Uncommitted> for QueueError {
    fn from(e: Uncommitted) -> Self {
        QueueError::Backend(e.0)
    }
}

/// A queue write that can fail only in storage once it began: any error breaks its transaction.
fn staged<T>(result: Result<T, QueueError>) -> Staged<T, QueueError> {
    match result {
        Ok(value) => Staged::Kept(Ok(value)),
        Err(e) => Staged::Broken(e),
    }
}

const MESSAGES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("queue_messages");
const READY: TableDefinition<&[u8], ()> = TableDefinition::new("queue_ready");

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    receive_count: u32,
    visible_at_ms: u64,
    sent_at_ms: u64,
    /// Received and neither deleted nor rescheduled since: a consumer is working on it until
    /// `visible_at_ms`. Only one process holds the database, so at open no such consumer is
    /// alive and [`RedbQueue::new`] makes these messages visible at once.
    #[serde(default)]
    leased: bool,
}

/// The Queue port backed by redb.
#[derive(Clone)]
pub struct RedbQueue {
    db: Arc<Database>,
    committer: Committer,
    /// Wakes long-polling receivers when a message is sent.
    sent: Arc<Notify>,
}

fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

fn message_key(queue: QueueName, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.as_str().len() + 1 + id.len());
    key.extend_from_slice(queue.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

fn ready_key(queue: QueueName, visible_at_ms: u64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.as_str().len() + 9 + id.len());
    key.extend_from_slice(queue.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&visible_at_ms.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

fn storage<E: std::fmt::Display>(error: E) -> QueueError {
    QueueError::Backend(error.to_string())
}

fn parse_receipt(receipt: &str) -> Result<(&str, u32), QueueError> {
    let (id, delivery) = receipt.rsplit_once('.').ok_or(QueueError::StaleReceipt)?;
    let delivery = delivery.parse().map_err(|_| QueueError::StaleReceipt)?;
    Ok((id, delivery))
}

type Tables<'t> = (
    redb::Table<'t, &'static [u8], &'static [u8]>,
    redb::Table<'t, &'static [u8], ()>,
);

fn load(
    messages: &redb::Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<StoredMessage>, QueueError> {
    match messages.get(key).map_err(storage)? {
        Some(value) => serde_json::from_slice(value.value())
            .map(Some)
            .map_err(storage),
        None => Ok(None),
    }
}

fn save(
    tables: &mut Tables<'_>,
    queue: QueueName,
    id: &str,
    message: &StoredMessage,
) -> Result<(), QueueError> {
    let bytes = serde_json::to_vec(message).map_err(storage)?;
    tables
        .0
        .insert(message_key(queue, id).as_slice(), bytes.as_slice())
        .map_err(storage)?;
    tables
        .1
        .insert(ready_key(queue, message.visible_at_ms, id).as_slice(), ())
        .map_err(storage)?;
    Ok(())
}

fn unschedule(
    tables: &mut Tables<'_>,
    queue: QueueName,
    id: &str,
    message: &StoredMessage,
) -> Result<(), QueueError> {
    tables
        .1
        .remove(ready_key(queue, message.visible_at_ms, id).as_slice())
        .map_err(storage)?;
    Ok(())
}

/// Makes every leased message visible now; returns how many there were.
fn release_leases(tables: &mut Tables<'_>) -> Result<usize, QueueError> {
    let mut leased = Vec::new();
    for entry in tables.0.iter().map_err(storage)? {
        let (key, value) = entry.map_err(storage)?;
        match serde_json::from_slice::<StoredMessage>(value.value()) {
            Ok(message) if message.leased => leased.push((key.value().to_vec(), message)),
            Ok(_) => {}
            // Left as it is: its receive refuses it, as before a restart.
            Err(error) => tracing::warn!(%error, "a queued message does not decode"),
        }
    }
    let now = now_ms();
    let released = leased.len();
    for (key, mut message) in leased {
        let separator = key
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| storage("a message key without its queue"))?;
        let queue = std::str::from_utf8(&key[..separator])
            .ok()
            .and_then(QueueName::named)
            .ok_or_else(|| storage("a message key names no queue"))?;
        let id = String::from_utf8_lossy(&key[separator + 1..]).into_owned();
        unschedule(tables, queue, &id, &message)?;
        message.visible_at_ms = now;
        message.leased = false;
        save(tables, queue, &id, &message)?;
    }
    Ok(released)
}

/// The due messages of `queue` (at most `max`), read and decoded before anything changes (so a
/// message that does not decode refuses this receive without spoiling the transaction it shares),
/// then leased or moved to the dead-letter queue; and when the next one falls due.
fn receive_in(
    txn: &redb::WriteTransaction,
    queue: QueueName,
    max: usize,
    visibility: Duration,
) -> Staged<(Vec<Received>, Option<u64>), QueueError> {
    let now = now_ms();
    let mut tables = match open_tables(txn) {
        Ok(tables) => tables,
        Err(e) => return Staged::Kept(Err(e)),
    };
    let (due, next_due) = match due_messages(&tables, queue, max, now) {
        Ok(planned) => planned,
        Err(e) => return Staged::Kept(Err(e)),
    };
    let mut received = Vec::with_capacity(due.len());
    for (id, mut message) in due {
        let leased = unschedule(&mut tables, queue, &id, &message).and_then(|()| {
            match queue
                .dead_letter_queue()
                .filter(|_| message.receive_count >= queue.max_receive_count())
            {
                Some(dlq) => {
                    // Delivered too often: moves to the dead-letter queue instead of being delivered.
                    tables
                        .0
                        .remove(message_key(queue, &id).as_slice())
                        .map_err(storage)?;
                    message.receive_count = 0;
                    message.visible_at_ms = now;
                    message.leased = false;
                    save(&mut tables, dlq, &id, &message)?;
                    tracing::warn!(queue = %queue, message_id = %id, "message moved to the dead-letter queue");
                    Ok(None)
                }
                None => {
                    message.receive_count += 1;
                    message.visible_at_ms = now + visibility.as_millis() as u64;
                    message.leased = true;
                    save(&mut tables, queue, &id, &message)?;
                    Ok(Some(message))
                }
            }
        });
        match leased {
            Ok(Some(message)) => received.push(Received {
                receipt: format!("{id}.{}", message.receive_count),
                id,
                body: message.body,
                receive_count: message.receive_count,
            }),
            Ok(None) => {}
            Err(e) => return Staged::Broken(e),
        }
    }
    Staged::Kept(Ok((received, next_due)))
}

fn open_tables(txn: &redb::WriteTransaction) -> Result<Tables<'_>, QueueError> {
    Ok((
        txn.open_table(MESSAGES).map_err(storage)?,
        txn.open_table(READY).map_err(storage)?,
    ))
}

/// Reads, without changing anything, the messages of `queue` due at `now` (at most `max`, in
/// order) and the time the next one falls due.
#[allow(clippy::type_complexity)]
fn due_messages(
    tables: &Tables<'_>,
    queue: QueueName,
    max: usize,
    now: u64,
) -> Result<(Vec<(String, StoredMessage)>, Option<u64>), QueueError> {
    let prefix = message_key(queue, "");
    let mut due = Vec::new();
    for entry in tables.1.range(prefix.as_slice()..).map_err(storage)? {
        let (key, _) = entry.map_err(storage)?;
        let key = key.value();
        if !key.starts_with(&prefix) {
            break;
        }
        let rest = &key[prefix.len()..];
        let (at, id) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| storage("a ready key without its time"))?;
        let visible_at = u64::from_be_bytes(*at);
        if visible_at > now || due.len() == max {
            return Ok((due, Some(visible_at)));
        }
        let id = String::from_utf8_lossy(id).into_owned();
        if let Some(message) = load(&tables.0, &message_key(queue, &id))? {
            due.push((id, message));
        }
    }
    Ok((due, None))
}

impl RedbQueue {
    pub(crate) fn new(db: Arc<Database>, committer: Committer) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        {
            let mut tables = (txn.open_table(MESSAGES)?, txn.open_table(READY)?);
            let released = release_leases(&mut tables).map_err(|e| StoreError(e.to_string()))?;
            if released > 0 {
                tracing::info!(
                    messages = released,
                    "redelivering the messages the previous run had not finished"
                );
            }
        }
        txn.commit()?;
        Ok(Self {
            db,
            committer,
            sent: Arc::new(Notify::new()),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| QueueError::Backend(format!("queue task failed: {e}")))?
    }

    /// Updates one delivered message under its receipt.
    async fn with_delivery(
        &self,
        queue: QueueName,
        receipt: &str,
        change: impl FnOnce(&mut Tables<'_>, &str, StoredMessage) -> Result<(), QueueError>
        + Send
        + 'static,
    ) -> Result<(), QueueError> {
        let (id, delivery) = parse_receipt(receipt)?;
        let id = id.to_owned();
        self.committer
            .write(move |txn| {
                let mut tables = match open_tables(txn) {
                    Ok(tables) => tables,
                    Err(e) => return Staged::Kept(Err(e)),
                };
                // Checked before anything changes: a stale receipt is refused, not broken.
                let message = match load(&tables.0, &message_key(queue, &id)) {
                    Ok(Some(message)) if message.receive_count == delivery => message,
                    Ok(_) => return Staged::Kept(Err(QueueError::StaleReceipt)),
                    Err(e) => return Staged::Kept(Err(e)),
                };
                staged(
                    unschedule(&mut tables, queue, &id, &message)
                        .and_then(|()| change(&mut tables, &id, message)),
                )
            })
            .await
    }

    /// One receive attempt without waiting.
    async fn receive_now(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<(Vec<Received>, Option<u64>), QueueError> {
        self.committer
            .write(move |txn| receive_in(txn, queue, max, visibility))
            .await
    }

    /// Number of messages in a queue, visible or not (operations and tests).
    pub async fn depth(&self, queue: QueueName) -> Result<usize, QueueError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let messages = txn.open_table(MESSAGES).map_err(storage)?;
            let prefix = message_key(queue, "");
            let mut count = 0;
            for entry in messages.range(prefix.as_slice()..).map_err(storage)? {
                let (key, _) = entry.map_err(storage)?;
                if !key.value().starts_with(&prefix) {
                    break;
                }
                count += 1;
            }
            Ok(count)
        })
        .await
    }
}

use redb::ReadableDatabase as _;

#[async_trait]
impl Queue for RedbQueue {
    async fn send(
        &self,
        queue: QueueName,
        body: &str,
        delay: Duration,
    ) -> Result<String, QueueError> {
        queue::validate_send(body, delay)?;
        let id = ulid::Ulid::new().to_string();
        let now = now_ms();
        let message = StoredMessage {
            body: body.to_owned(),
            receive_count: 0,
            visible_at_ms: now + delay.as_millis() as u64,
            sent_at_ms: now,
            leased: false,
        };
        let message_id = id.clone();
        self.committer
            .write(move |txn| match open_tables(txn) {
                Ok(mut tables) => staged(save(&mut tables, queue, &message_id, &message)),
                Err(e) => Staged::Kept(Err(e)),
            })
            .await?;
        self.sent.notify_waiters();
        Ok(id)
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        queue::validate_receive(max)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            let (received, next_due) = self.receive_now(queue, max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            let mut until = deadline;
            if let Some(due) = next_due {
                let in_ms = due.saturating_sub(now_ms());
                until = until.min(now + Duration::from_millis(in_ms.max(1)));
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.with_delivery(queue, receipt, move |tables, id, _| {
            tables
                .0
                .remove(message_key(queue, id).as_slice())
                .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        if visibility > Duration::from_secs(12 * 3600) {
            return Err(QueueError::Invalid(
                "visibility timeout is at most 12 hours".into(),
            ));
        }
        self.with_delivery(queue, receipt, move |tables, id, mut message| {
            message.visible_at_ms = now_ms() + visibility.as_millis() as u64;
            message.leased = false;
            save(tables, queue, id, &message)
        })
        .await?;
        self.sent.notify_waiters();
        Ok(())
    }
}
