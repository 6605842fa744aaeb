//! Platform context: service health, the job canary that proves schedules, queues and workers run,
//! housekeeping, and checked uploads.
//!
//! Reference: `docs/platform.md`.

pub mod canary;
pub mod health;
pub mod uploads;

use amanar_core::Ports;

/// What went wrong in a housekeeping run.
#[derive(Debug, thiserror::Error)]
pub enum HousekeepingError {
    #[error(transparent)]
    Queue(#[from] amanar_core::QueueError),
    #[error(transparent)]
    Table(#[from] amanar_core::TableError),
}

/// The periodic housekeeping job (EventBridge schedule in AWS, a timer in the local runtime): sends
/// the job canary and settles uploads whose check was never triggered.
pub async fn housekeeping(ports: &Ports) -> Result<(), HousekeepingError> {
    canary::send(ports).await?;
    let settled = uploads::sweep_stale(ports).await?;
    if settled > 0 {
        tracing::info!(settled, "housekeeping settled stale uploads");
    }
    Ok(())
}
