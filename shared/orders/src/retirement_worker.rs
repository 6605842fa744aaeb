//! The retirement worker (`retirements` queue) and its sweeper (housekeeping).
//!
//! A message names a retirement; the worker carries it forward from wherever its record stands
//! (`requested`: retire the credits; `retired`: write the certificate), so copies, redeliveries
//! and a crash between two steps all end in one retirement with one certificate. The sweeper
//! sends the message again for a retirement that has not moved for a while: the message lost
//! between a request's write and its send, or one that went to the dead-letter queue after a
//! passing failure.

use std::time::Duration;

use amanar_core::blobs::Bucket;
use amanar_core::context::{Consumer, Task};
use amanar_core::messages::{JobMessage, RetireCredits};
use amanar_core::table::items;
use amanar_core::workflow::{Flow, Status, SweepPolicy, Verdict};
use amanar_core::{JobError, Ports, QueueName, Received, TableError, keys};
use amanar_marketplace::ledger::LedgerError;
use chrono::TimeDelta;

use crate::certificate;
use crate::retirements::{FLOW, Retirement, RetirementError, RetirementStatus, Retirements};

/// The consumer of the `retirements` queue.
pub const RETIREMENTS: Consumer<Ports> = Consumer {
    function: "worker-retirements",
    queue: QueueName::Retirements,
    handle: |ports, message| Box::pin(handle(ports, message)),
};

/// The sweeper of retirements that stopped moving.
pub const RESEND_RETIREMENTS: Task<Ports> = Task {
    name: "resend-retirements",
    run: |ports| Box::pin(resend(ports)),
};

/// Where a retirement's public record is read.
pub fn public_path(retirement_id: &str) -> String {
    format!("/v1/public/retirements/{retirement_id}")
}

async fn handle(ports: &Ports, message: &Received) -> Result<(), JobError> {
    let message = RetireCredits::from_body(&message.body).map_err(JobError::Poison)?;
    carry_out(ports, &message.retirement_id).await
}

/// Carries a retirement forward to `completed`.
pub async fn carry_out(ports: &Ports, retirement_id: &str) -> Result<(), JobError> {
    let store = Retirements::new(ports.table.clone());
    let now = ports.clock.now();
    let retirement = match store.retire(retirement_id, now).await {
        Ok(retirement) => retirement,
        Err(RetirementError::NotFound) => {
            tracing::warn!(retirement = %retirement_id, "no such retirement; message dropped");
            return Ok(());
        }
        // What no retry changes: the holding no longer has the credits, or they are final.
        Err(RetirementError::Ledger(
            e @ (LedgerError::Insufficient { .. }
            | LedgerError::Final(_)
            | LedgerError::TooFragmented { .. }
            | LedgerError::MovementReused(_)
            | LedgerError::Invalid(_)),
        )) => {
            let retirement = store
                .get(retirement_id)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?
                .ok_or_else(|| JobError::Poison("the retirement vanished".into()))?;
            if retirement.status != RetirementStatus::Requested {
                // A copy of this message retired it meanwhile (the credits it found gone were
                // these): that copy carries it through.
                return Ok(());
            }
            // Ended as failed, its tonnes given back to the holding: the owner may ask again.
            let failed = store
                .fail(&retirement, &e.to_string(), now)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            if failed {
                tracing::error!(retirement = %retirement_id, error = %e, "retirement cannot be carried out; failed");
            }
            return Ok(());
        }
        Err(e) => return Err(JobError::Retry(e.to_string())),
    };
    let retirement = match retirement.status {
        RetirementStatus::Retired => certify(ports, &store, retirement).await?,
        // Completed by an earlier delivery, which may have stopped before telling the owner.
        RetirementStatus::Completed => retirement,
        _ => return Ok(()),
    };
    let at = retirement.updated_at;
    crate::notices::send(
        &*ports.queue,
        crate::notices::of_retirement(&retirement, at),
    )
    .await
    .map_err(|e| JobError::Retry(e.to_string()))
}

/// Writes the certificate of a retired retirement and records it.
async fn certify(
    ports: &Ports,
    store: &Retirements,
    retirement: Retirement,
) -> Result<Retirement, JobError> {
    let key = Retirement::certificate_key_for(&retirement.retirement_id);
    let path = public_path(&retirement.retirement_id);
    let (retirement, pdf) = tokio::task::spawn_blocking(move || {
        let pdf = certificate::render(&retirement, &path);
        (retirement, pdf)
    })
    .await
    .map_err(|e| JobError::Retry(format!("the certificate's rendering failed: {e}")))?;
    ports
        .blobs
        .put(Bucket::Exports, &key, pdf.into(), "application/pdf")
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    let now = ports.clock.now();
    store
        .complete(&retirement, &key, now)
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    tracing::info!(retirement = %retirement.retirement_id, quantity = retirement.quantity, "retirement completed");
    Ok(Retirement {
        status: RetirementStatus::Completed,
        certificate_key: Some(key),
        updated_at: now,
        ..retirement
    })
}

/// A retirement that has not moved for this long is sent again.
const STALE_AFTER: TimeDelta = TimeDelta::seconds(120);
const SWEEP_BUDGET: Duration = Duration::from_secs(20);

async fn resend(ports: &Ports) -> Result<usize, String> {
    let now = ports.clock.now();
    let policy = SweepPolicy {
        stale_after: STALE_AFTER,
        limit: 1000,
        budget: SWEEP_BUDGET,
    };
    let report = FLOW
        .sweep(&*ports.table, now, policy, |item| async move {
            let seen = item.clone();
            let retirement: Retirement = items::parse(item)?;
            if retirement.status.is_final() {
                return Ok(Verdict::Waiting);
            }
            crate::retirements::enqueue(&*ports.queue, &retirement.retirement_id)
                .await
                .map_err(|e| TableError::Unavailable(e.to_string()))?;
            let nudge = FLOW.nudge(
                keys::retirement(&retirement.retirement_id),
                &retirement.retirement_id,
                retirement.status,
                now,
            );
            Flow::apply(&*ports.table, Flow::as_seen(nudge, &seen)).await?;
            Ok(Verdict::Nudged)
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(report.moved())
}
