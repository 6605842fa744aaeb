//! Queue consumers and housekeeping, derived from the contexts' registrations: the `jobs` worker
//! dispatches on each message's `type` (and `upload-checked.v1` on the upload's purpose), the
//! upload check reads the `uploads` queue, and housekeeping runs every context's tasks. Both the
//! Lambda handlers and the local runtime's pollers take them from here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amanar_core::context::{ConsumerService, JobService, TaskService, UploadService};
use amanar_core::messages::{JobMessage, UploadChecked, UploadEvent, message_type};
use amanar_core::{JobError, JobHandler, Ports, QueueName, Received};
use async_trait::async_trait;

use crate::wiring::Wiring;

/// Consumer of the `jobs` queue: every context's job handlers by message type, and its upload
/// follow-ups by purpose. A handler's state is built on its first message.
pub struct JobsWorker {
    wiring: Wiring,
    jobs: HashMap<&'static str, Arc<dyn JobService<Wiring>>>,
    uploads: HashMap<&'static str, Arc<dyn UploadService<Wiring>>>,
}

impl JobsWorker {
    pub fn new(wiring: Wiring) -> Self {
        let (mut jobs, mut uploads) = (HashMap::new(), HashMap::new());
        for context in crate::contexts() {
            for job in context.jobs {
                jobs.insert(job.message_type(), job);
            }
            for upload in context.uploads {
                uploads.insert(upload.purpose(), upload);
            }
        }
        Self {
            wiring,
            jobs,
            uploads,
        }
    }
}

#[async_trait]
impl JobHandler for JobsWorker {
    async fn handle(&self, message: &Received) -> Result<(), JobError> {
        let Some(ty) = message_type(&message.body) else {
            return Err(JobError::Poison("a job message needs a type".into()));
        };
        if ty == UploadChecked::TYPE {
            let checked = UploadChecked::from_body(&message.body).map_err(JobError::Poison)?;
            return match self.uploads.get(checked.purpose.as_str()) {
                Some(follow_up) => follow_up.on_checked(&self.wiring, &checked.upload_id).await,
                // Files whose context needs no follow-up (read on demand); said, so that a
                // purpose misspelt at declaration does not go unnoticed.
                None => {
                    tracing::warn!(purpose = %checked.purpose, "no context follows up uploads of this purpose");
                    Ok(())
                }
            };
        }
        match self.jobs.get(ty.as_str()) {
            Some(job) => job.handle(&self.wiring, message).await,
            None => Err(JobError::Poison(format!(
                "no context handles {ty} messages (a context registers a Job with this message_type)"
            ))),
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
/// runtime). Tasks run one after another; a failed task is logged and the others still run.
pub struct Housekeeping {
    wiring: Wiring,
    tasks: Vec<Arc<dyn TaskService<Wiring>>>,
}

/// The tasks that failed in a housekeeping run, with why.
#[derive(Debug, thiserror::Error)]
#[error("housekeeping tasks failed: {}", .0.iter().map(|(t, e)| format!("{t}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct HousekeepingFailed(pub Vec<(&'static str, String)>);

impl Housekeeping {
    pub fn new(wiring: Wiring) -> Self {
        let tasks = crate::contexts()
            .into_iter()
            .flat_map(|c| c.housekeeping)
            .collect();
        Self { wiring, tasks }
    }

    pub async fn run(&self) -> Result<(), HousekeepingFailed> {
        let mut failed = Vec::new();
        for task in &self.tasks {
            let started = Instant::now();
            match task.run(&self.wiring).await {
                Ok(0) => {}
                Ok(moved) => tracing::info!(task = task.name(), moved, "housekeeping task"),
                Err(error) => {
                    tracing::error!(task = task.name(), %error, "housekeeping task failed");
                    failed.push((task.name(), error));
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                tracing::warn!(
                    task = task.name(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "slow housekeeping task"
                );
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(HousekeepingFailed(failed))
        }
    }
}

/// A context's consumer of its own queue, with the wiring its state is built from.
struct ContextConsumer {
    wiring: Wiring,
    service: Arc<dyn ConsumerService<Wiring>>,
}

#[async_trait]
impl JobHandler for ContextConsumer {
    async fn handle(&self, message: &Received) -> Result<(), JobError> {
        self.service.handle(&self.wiring, message).await
    }
}

/// The consumers of the contexts' own queues.
pub fn context_consumers() -> Vec<Arc<dyn ConsumerService<Wiring>>> {
    crate::contexts()
        .into_iter()
        .flat_map(|c| c.consumers)
        .collect()
}

/// The consumer of one queue: the platform's (`jobs`, `uploads`) or a context's.
pub async fn consumer(
    wiring: &Wiring,
    queue: QueueName,
) -> Result<Option<Arc<dyn JobHandler>>, amanar_core::DepsError> {
    Ok(match queue {
        QueueName::Jobs => Some(Arc::new(JobsWorker::new(wiring.clone()))),
        QueueName::Uploads => Some(Arc::new(UploadsWorker(wiring.ports().await?))),
        _ => context_consumers()
            .into_iter()
            .find(|c| c.queue() == queue)
            .map(|service| {
                Arc::new(ContextConsumer {
                    wiring: wiring.clone(),
                    service,
                }) as Arc<dyn JobHandler>
            }),
    })
}

/// Every queue the local runtime polls, with its consumer.
pub async fn consumers(
    wiring: &Wiring,
) -> Result<Vec<(QueueName, Arc<dyn JobHandler>)>, amanar_core::DepsError> {
    let mut all = Vec::new();
    for queue in QueueName::ALL {
        if let Some(handler) = consumer(wiring, queue).await? {
            all.push((queue, handler));
        }
    }
    Ok(all)
}
