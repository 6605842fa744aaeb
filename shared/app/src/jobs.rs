//! Queue consumers and their dispatch: which handler reads which queue. Both the Lambda SQS handlers
//! and the local runtime's pollers take them from here.

use std::sync::Arc;

use amanar_core::messages::{JobMessage, UploadEvent};
use amanar_core::{JobError, JobHandler, Ports, QueueName, Received};
use async_trait::async_trait;

/// Consumer of the `jobs` queue.
pub struct JobsWorker(pub Ports);

#[async_trait]
impl JobHandler for JobsWorker {
    async fn handle(&self, message: &Received) -> Result<(), JobError> {
        let job: JobMessage = serde_json::from_str(&message.body)
            .map_err(|e| JobError::Poison(format!("unreadable job: {e}")))?;
        match job {
            JobMessage::Canary { sent_at } => {
                amanar_platform::canary::record(&self.0, sent_at).await
            }
            JobMessage::UploadChecked { upload_id, purpose } => match purpose.as_str() {
                amanar_accounting::imports::PURPOSE => {
                    amanar_accounting::imports::on_upload_checked(&self.0, &upload_id).await
                }
                // Files whose context needs no follow-up (project documents are read on demand).
                _ => Ok(()),
            },
        }
    }
}

/// Consumer of the `uploads` queue (object-created events, local runtime).
pub struct UploadsWorker(pub Ports);

#[async_trait]
impl JobHandler for UploadsWorker {
    async fn handle(&self, message: &Received) -> Result<(), JobError> {
        let event: UploadEvent = serde_json::from_str(&message.body)
            .map_err(|e| JobError::Poison(format!("unreadable upload event: {e}")))?;
        match event {
            UploadEvent::ObjectCreated { key, .. } => {
                amanar_platform::uploads::verify(&self.0, &key).await
            }
        }
    }
}

/// The periodic housekeeping of every context (EventBridge schedule in AWS, a timer in the local
/// runtime): the job canary and stale uploads (platform), then stuck activity imports.
pub async fn housekeeping(ports: &Ports) -> Result<(), amanar_platform::HousekeepingError> {
    amanar_platform::housekeeping(ports).await?;
    let nudged = amanar_accounting::imports::sweep_stale(ports).await?;
    if nudged > 0 {
        tracing::info!(nudged, "housekeeping nudged stuck activity imports");
    }
    Ok(())
}

/// Every queue the local runtime polls, with its consumer.
pub fn consumers(ports: &Ports) -> Vec<(QueueName, Arc<dyn JobHandler>)> {
    vec![
        (QueueName::Jobs, Arc::new(JobsWorker(ports.clone()))),
        (QueueName::Uploads, Arc::new(UploadsWorker(ports.clone()))),
    ]
}
