//! Append-only, tamper-evident audit log: one hash chain per user and per organisation.
//!
//! Each entry holds the hash of the one before; a head item holds the newest sequence number and
//! hash, and an append writes the entry and moves the head in one conditional transaction, so two
//! concurrent appends cannot fork the chain. Entries name actors, actions and targets by id; they
//! never hold passwords, codes, tokens or key secrets.

use std::sync::Arc;

use amanar_core::table::{Condition, Index, Query, Table, TableError, WriteOp, items};
use amanar_core::{Clock, Cursor, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Something that happened, before it is appended.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: &'static str) -> Self {
        Self {
            actor: actor.into(),
            action,
            target: None,
            detail: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// One appended entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// 1, 2, 3… within its log.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// User id of whoever acted (or `anonymous`).
    pub actor: String,
    /// e.g. `user.registered`, `auth.login_failed`, `mfa.enabled`, `member.role_changed`.
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// Hash of the previous entry (`""` for the first).
    pub prev_hash: String,
    /// SHA-256 over the previous hash and this entry's fields.
    pub hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

fn hash_of(
    prev: &str,
    seq: u64,
    at: &DateTime<Utc>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &at.to_rfc3339(),
        actor,
        action,
        target.unwrap_or(""),
        detail.unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// Whether entries (in ascending order, from the first) form an unbroken chain.
pub fn chain_is_intact(entries: &[AuditEntry]) -> bool {
    let mut prev = String::new();
    for (i, e) in entries.iter().enumerate() {
        let expected = hash_of(
            &prev,
            e.seq,
            &e.at,
            &e.actor,
            &e.action,
            e.target.as_deref(),
            e.detail.as_deref(),
        );
        if e.seq != i as u64 + 1 || e.prev_hash != prev || e.hash != expected {
            return false;
        }
        prev = e.hash.clone();
    }
    true
}

/// Tries at appending one entry before giving up with a transient conflict. Each round has one
/// winner per log, so a burst of N appends needs about N rounds for its last one: 64 covers the
/// bursts the limits allow (a lock stops a login flood's appends after a handful) with room.
const APPEND_ATTEMPTS: u32 = 64;

/// A random pause before retry `attempt` (1, 2, ...): up to 2, 4, 8... ms, capped at 128 ms.
fn append_pause(attempt: u32) -> std::time::Duration {
    let ceiling_ms = 1u64 << attempt.min(7);
    let mut random = [0u8; 2];
    // A failed random source only loses the jitter, not the retry.
    let _ = getrandom::fill(&mut random);
    let micros = u64::from(u16::from_le_bytes(random)) % (ceiling_ms * 1000);
    std::time::Duration::from_micros(micros + 200)
}

#[derive(Clone)]
pub struct Audit {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Audit {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    /// Appends the event to each user's log and to the organisation's log.
    pub async fn record(
        &self,
        users: &[&str],
        org: Option<&str>,
        event: AuditEvent,
    ) -> Result<(), TableError> {
        let mut streams: Vec<String> = users.iter().map(|u| keys::audit_stream_user(u)).collect();
        streams.sort();
        streams.dedup();
        if let Some(org) = org {
            streams.push(keys::audit_stream_org(org));
        }
        for stream in streams {
            self.append(&stream, &event).await?;
        }
        Ok(())
    }

    /// Appends one entry. Concurrent appends to one log race for its head: the loser reads the new
    /// head and tries again after a short random pause, so a burst (30 parallel failed logins)
    /// spreads out instead of colliding again in step. If the head still moves every time, the
    /// answer is a transient conflict (a 503 with `Retry-After`): never a lost entry.
    async fn append(&self, stream: &str, event: &AuditEvent) -> Result<(), TableError> {
        for attempt in 0..APPEND_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(append_pause(attempt)).await;
            }
            let head: Option<Head> = match self.table.get(&keys::audit_head(stream)).await? {
                Some(item) => Some(items::parse(item)?),
                None => None,
            };
            let (seq, prev) = head
                .as_ref()
                .map_or((1, String::new()), |h| (h.seq + 1, h.hash.clone()));
            let at = self.clock.now();
            let hash = hash_of(
                &prev,
                seq,
                &at,
                &event.actor,
                event.action,
                event.target.as_deref(),
                event.detail.as_deref(),
            );
            let entry = AuditEntry {
                seq,
                at,
                actor: event.actor.clone(),
                action: event.action.to_owned(),
                target: event.target.clone(),
                detail: event.detail.clone(),
                prev_hash: prev,
                hash: hash.clone(),
            };
            let head_item = items::with_key(&keys::audit_head(stream), &Head { seq, hash })?;
            let head_condition = match head {
                None => Condition::NotExists,
                Some(h) => Condition::Equals("seq".into(), h.seq.into()),
            };
            match self
                .table
                .write(vec![
                    WriteOp::put(items::with_key(&keys::audit_entry(stream, seq), &entry)?)
                        .when(Condition::NotExists),
                    WriteOp::put(head_item).when(head_condition),
                ])
                .await
            {
                Ok(()) => return Ok(()),
                Err(TableError::ConditionFailed { .. }) | Err(TableError::TransactionConflict) => {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(TableError::TransactionConflict)
    }

    /// A page of a log, newest first.
    pub async fn list(
        &self,
        stream: &str,
        limit: usize,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<AuditEntry>, Option<Cursor>), TableError> {
        let page = self
            .table
            .query(
                &Query::partition(Index::Primary, keys::audit_partition(stream))
                    .sort(amanar_core::SortKey::BeginsWith(keys::AUDIT_ENTRIES.into()))
                    .backward()
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let entries = page
            .items
            .into_iter()
            .map(items::parse)
            .collect::<Result<_, _>>()?;
        Ok((entries, page.next))
    }
}
