//! Platform context: service health, the job canary that proves schedules, queues and workers run,
//! housekeeping, and checked uploads.

pub mod canary;
pub mod health;
pub mod uploads;

use amanar_core::Ports;

/// The periodic housekeeping job (EventBridge schedule in AWS, a timer in the local runtime).
pub async fn housekeeping(ports: &Ports) -> Result<(), amanar_core::QueueError> {
    canary::send(ports).await
}
