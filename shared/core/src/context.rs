//! How a bounded context says what it needs and what it runs, without naming an adapter.
//!
//! A context's state (the ports and services its handlers use) implements [`FromDeps`]: it is
//! built from a composition root `D` that can [`Provide`] each dependency. The root (`amanar-app`'s
//! `Wiring`) builds a dependency on first request and keeps it, so a process builds only what the
//! states it runs ask for; and because every bound is checked at compile time, a context whose
//! dependency the root cannot provide does not compile.
//!
//! The background half of a context's registration lives here too: its [`Job`] handlers by
//! message type, its [`UploadFollowUp`]s by upload purpose and its housekeeping [`Task`]s. The HTTP
//! half (functions and routers) is in `amanar-http`, which also holds the whole descriptor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::{JobError, Received};

/// A boxed future, as stored in a registration.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A dependency could not be built (configuration, an adapter that failed to start).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build {what}: {reason}")]
pub struct DepsError {
    pub what: &'static str,
    pub reason: String,
}

impl DepsError {
    pub fn new(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            what,
            reason: reason.to_string(),
        }
    }
}

/// The composition root can build a `T` (once per process, then shared).
#[diagnostic::on_unimplemented(
    message = "the composition root cannot provide `{T}`",
    note = "add a builder for it and an entry in the `provide!` list of shared/app/src/wiring.rs"
)]
pub trait Provide<T> {
    fn provide(&self) -> impl Future<Output = Result<T, DepsError>> + Send;
}

/// Names the dependency to build when the call site cannot infer it:
/// `deps.need::<Arc<dyn Table>>().await?`.
pub trait Need {
    fn need<T>(&self) -> impl Future<Output = Result<T, DepsError>> + Send
    where
        Self: Provide<T>,
    {
        Provide::<T>::provide(self)
    }
}

impl<D> Need for D {}

/// A context's state, assembled from what the composition root provides.
pub trait FromDeps<D>: Sized + Send + Sync + 'static {
    fn from_deps(deps: &D) -> impl Future<Output = Result<Self, DepsError>> + Send;
}

/// Handlers that need nothing (static data, pure computation).
impl<D: Sync> FromDeps<D> for () {
    async fn from_deps(_: &D) -> Result<Self, DepsError> {
        Ok(())
    }
}

/// A consumer of one message type of the `jobs` queue.
pub struct Job<S> {
    /// The `type` of the messages it handles ([`crate::messages::JobMessage::TYPE`]).
    pub message_type: &'static str,
    pub handle: for<'a> fn(&'a S, &'a Received) -> BoxFuture<'a, Result<(), JobError>>,
}

/// The consumer of one of a context's own queues (`purchases`), deployed as its own function.
pub struct Consumer<S> {
    /// The Lambda function that reads the queue (`worker-purchases`).
    pub function: &'static str,
    pub queue: crate::QueueName,
    pub handle: for<'a> fn(&'a S, &'a Received) -> BoxFuture<'a, Result<(), JobError>>,
}

/// What a context does once one of its uploads is settled (accepted or rejected).
pub struct UploadFollowUp<S> {
    /// The purpose its uploads are declared with.
    pub purpose: &'static str,
    pub on_checked: for<'a> fn(&'a S, &'a str) -> BoxFuture<'a, Result<(), JobError>>,
}

/// A periodic task of the housekeeping schedule. It returns how many records it moved.
pub struct Task<S> {
    pub name: &'static str,
    pub run: for<'a> fn(&'a S) -> BoxFuture<'a, Result<usize, String>>,
}

/// A state built on first use and kept: a worker that never sees a message type never builds its
/// handler's dependencies.
struct Lazy<S> {
    state: OnceCell<S>,
}

impl<S: Send + Sync> Lazy<S> {
    fn new() -> Self {
        Self {
            state: OnceCell::new(),
        }
    }

    async fn get<D>(&self, deps: &D) -> Result<&S, DepsError>
    where
        S: FromDeps<D>,
    {
        self.state.get_or_try_init(|| S::from_deps(deps)).await
    }
}

fn not_ready(error: DepsError) -> JobError {
    JobError::Retry(error.to_string())
}

/// A [`Job`] with its state erased: what the jobs worker of composition root `D` holds.
#[async_trait]
pub trait JobService<D>: Send + Sync {
    fn message_type(&self) -> &'static str;
    async fn handle(&self, deps: &D, message: &Received) -> Result<(), JobError>;
}

/// A [`Consumer`] with its state erased.
#[async_trait]
pub trait ConsumerService<D>: Send + Sync {
    fn function(&self) -> &'static str;
    fn queue(&self) -> crate::QueueName;
    async fn handle(&self, deps: &D, message: &Received) -> Result<(), JobError>;
}

/// An [`UploadFollowUp`] with its state erased.
#[async_trait]
pub trait UploadService<D>: Send + Sync {
    fn purpose(&self) -> &'static str;
    async fn on_checked(&self, deps: &D, upload_id: &str) -> Result<(), JobError>;
}

/// A [`Task`] with its state erased.
#[async_trait]
pub trait TaskService<D>: Send + Sync {
    fn name(&self) -> &'static str;
    async fn run(&self, deps: &D) -> Result<usize, String>;
}

struct Erased<T, S> {
    inner: T,
    state: Lazy<S>,
}

impl<T, S: Send + Sync> Erased<T, S> {
    fn new(inner: T) -> Self {
        Self {
            inner,
            state: Lazy::new(),
        }
    }
}

#[async_trait]
impl<D: Sync, S: FromDeps<D>> JobService<D> for Erased<Job<S>, S> {
    fn message_type(&self) -> &'static str {
        self.inner.message_type
    }
    async fn handle(&self, deps: &D, message: &Received) -> Result<(), JobError> {
        let state = self.state.get(deps).await.map_err(not_ready)?;
        (self.inner.handle)(state, message).await
    }
}

#[async_trait]
impl<D: Sync, S: FromDeps<D>> ConsumerService<D> for Erased<Consumer<S>, S> {
    fn function(&self) -> &'static str {
        self.inner.function
    }
    fn queue(&self) -> crate::QueueName {
        self.inner.queue
    }
    async fn handle(&self, deps: &D, message: &Received) -> Result<(), JobError> {
        let state = self.state.get(deps).await.map_err(not_ready)?;
        (self.inner.handle)(state, message).await
    }
}

#[async_trait]
impl<D: Sync, S: FromDeps<D>> UploadService<D> for Erased<UploadFollowUp<S>, S> {
    fn purpose(&self) -> &'static str {
        self.inner.purpose
    }
    async fn on_checked(&self, deps: &D, upload_id: &str) -> Result<(), JobError> {
        let state = self.state.get(deps).await.map_err(not_ready)?;
        (self.inner.on_checked)(state, upload_id).await
    }
}

#[async_trait]
impl<D: Sync, S: FromDeps<D>> TaskService<D> for Erased<Task<S>, S> {
    fn name(&self) -> &'static str {
        self.inner.name
    }
    async fn run(&self, deps: &D) -> Result<usize, String> {
        let state = self.state.get(deps).await.map_err(|e| e.to_string())?;
        (self.inner.run)(state).await
    }
}

impl<S> Job<S> {
    pub fn erase<D: Sync + 'static>(self) -> Arc<dyn JobService<D>>
    where
        S: FromDeps<D>,
    {
        Arc::new(Erased::new(self))
    }
}

impl<S> Consumer<S> {
    pub fn erase<D: Sync + 'static>(self) -> Arc<dyn ConsumerService<D>>
    where
        S: FromDeps<D>,
    {
        Arc::new(Erased::new(self))
    }
}

impl<S> UploadFollowUp<S> {
    pub fn erase<D: Sync + 'static>(self) -> Arc<dyn UploadService<D>>
    where
        S: FromDeps<D>,
    {
        Arc::new(Erased::new(self))
    }
}

impl<S> Task<S> {
    pub fn erase<D: Sync + 'static>(self) -> Arc<dyn TaskService<D>>
    where
        S: FromDeps<D>,
    {
        Arc::new(Erased::new(self))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A root that counts how often it is asked for its one dependency.
    struct Root {
        built: AtomicUsize,
    }

    impl Provide<u32> for Root {
        async fn provide(&self) -> Result<u32, DepsError> {
            self.built.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        }
    }

    struct Seven(u32);

    impl<D: Provide<u32> + Sync> FromDeps<D> for Seven {
        async fn from_deps(deps: &D) -> Result<Self, DepsError> {
            Ok(Seven(deps.need::<u32>().await?))
        }
    }

    fn received(body: &str) -> Received {
        Received {
            id: "m1".into(),
            body: body.into(),
            receipt: "r1".into(),
            receive_count: 1,
        }
    }

    #[tokio::test]
    async fn a_job_builds_its_state_on_its_first_message_and_keeps_it() {
        let root = Root {
            built: AtomicUsize::new(0),
        };
        let job = Job::<Seven> {
            message_type: "seven.v1",
            handle: |state, message| {
                Box::pin(async move {
                    if state.0 == 7 && message.body == "ok" {
                        Ok(())
                    } else {
                        Err(JobError::Poison("unexpected".into()))
                    }
                })
            },
        }
        .erase::<Root>();
        assert_eq!(
            root.built.load(Ordering::SeqCst),
            0,
            "nothing built before use"
        );
        job.handle(&root, &received("ok")).await.unwrap();
        job.handle(&root, &received("ok")).await.unwrap();
        assert_eq!(root.built.load(Ordering::SeqCst), 1);
        assert!(job.handle(&root, &received("no")).await.is_err());
    }
}
