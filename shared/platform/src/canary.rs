//! The job canary: the housekeeping schedule sends a `canary.v1` message to the jobs queue and the
//! worker records when it processed it, so `GET /v1/health` can tell that the whole pipeline runs.

use amanar_core::context::{BoxFuture, Job, Task};
use amanar_core::messages::{Canary, JobMessage};
use amanar_core::table::{WriteOp, items};
use amanar_core::{JobError, Ports, QueueName, Received, keys};
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
    let message = Canary {
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

/// The worker's handler of `canary.v1`.
pub const JOB: Job<Ports> = Job {
    message_type: <Canary as JobMessage>::TYPE,
    handle: on_canary,
};

fn on_canary<'a>(ports: &'a Ports, message: &'a Received) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let canary = Canary::from_body(&message.body).map_err(JobError::Poison)?;
        record(ports, canary.sent_at).await
    })
}

/// The housekeeping task that sends the canary.
pub const SEND: Task<Ports> = Task {
    name: "job canary",
    run: send_task,
};

fn send_task(ports: &Ports) -> BoxFuture<'_, Result<usize, String>> {
    Box::pin(async move {
        send(ports).await.map_err(|e| e.to_string())?;
        Ok(1)
    })
}
