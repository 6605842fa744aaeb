//! The job canary: the housekeeping schedule sends a `canary.v1` message to the jobs queue and the
//! worker records when it processed it, so `GET /v1/health` can tell that the whole pipeline runs.

use amanar_core::messages::JobMessage;
use amanar_core::table::{WriteOp, items};
use amanar_core::{JobError, Ports, QueueName, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How old the last processed canary may be before health reports the jobs as stale.
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryRecord {
    pub sent_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub lag_ms: i64,
}

/// Sends a canary through the jobs queue (run by the housekeeping schedule).
pub async fn send(ports: &Ports) -> Result<(), amanar_core::QueueError> {
    let message = JobMessage::Canary {
        sent_at: ports.clock.now(),
    };
    ports
        .queue
        .send(
            QueueName::Jobs,
            &message.to_body(),
            std::time::Duration::ZERO,
        )
        .await?;
    Ok(())
}

/// Records a processed canary. Idempotent: a redelivery only refreshes the record.
pub async fn record(ports: &Ports, sent_at: DateTime<Utc>) -> Result<(), JobError> {
    let now = ports.clock.now();
    let record = CanaryRecord {
        sent_at,
        processed_at: now,
        lag_ms: (now - sent_at).num_milliseconds(),
    };
    let item =
        items::with_key(&keys::canary(), &record).map_err(|e| JobError::Poison(e.to_string()))?;
    ports
        .table
        .write(vec![WriteOp::put(item)])
        .await
        .map_err(|e| JobError::Retry(e.to_string()))
}
