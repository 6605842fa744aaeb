//! The one registration of a bounded context: its HTTP functions, its job handlers by message type,
//! its upload purposes and their follow-up, its housekeeping tasks, its API-key scopes and its
//! OpenAPI tag. `amanar-app` lists the contexts once; the local runtime, the Lambda entry points,
//! the OpenAPI document and the template check all derive from that list.

use std::sync::Arc;

use amanar_core::context::{
    Consumer, ConsumerService, Job, JobService, Task, TaskService, UploadFollowUp, UploadService,
};
use amanar_core::{DepsError, FromDeps};
use async_trait::async_trait;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::scope::Scope;

/// One Lambda function serving HTTP: its binary name and its routes over the state `S`.
pub struct HttpFunction<S> {
    pub name: &'static str,
    pub routes: fn() -> OpenApiRouter<S>,
}

impl<S> Clone for HttpFunction<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for HttpFunction<S> {}

impl<S: Clone + Send + Sync + 'static> HttpFunction<S> {
    /// The function's routes and their OpenAPI document, without state.
    pub fn openapi(&self) -> OpenApiRouter<S> {
        (self.routes)()
    }

    /// The function's router with its state built from `deps`.
    pub async fn router<D: Sync>(&self, deps: &D) -> Result<Router, DepsError>
    where
        S: FromDeps<D>,
    {
        let state = S::from_deps(deps).await?;
        let (router, _) = (self.routes)().split_for_parts();
        Ok(router.with_state(state))
    }

    pub fn erase<D: Sync + 'static>(self) -> Arc<dyn HttpService<D>>
    where
        S: FromDeps<D>,
    {
        Arc::new(self)
    }
}

/// An [`HttpFunction`] with its state erased: what a list of every function holds.
#[async_trait]
pub trait HttpService<D>: Send + Sync {
    fn name(&self) -> &'static str;
    /// The routes' OpenAPI document (paths, operations, schemas).
    fn openapi(&self) -> utoipa::openapi::OpenApi;
    async fn router(&self, deps: &D) -> Result<Router, DepsError>;
}

#[async_trait]
impl<D: Sync, S: FromDeps<D> + Clone> HttpService<D> for HttpFunction<S> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        HttpFunction::openapi(self).split_for_parts().1
    }
    async fn router(&self, deps: &D) -> Result<Router, DepsError> {
        HttpFunction::router(self, deps).await
    }
}

/// An OpenAPI tag: the heading a context's operations are listed under.
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    pub name: &'static str,
    pub description: &'static str,
}

/// Everything a context contributes to a process whose composition root is `D`.
pub struct Context<D> {
    pub name: &'static str,
    pub tag: Tag,
    /// The API-key scopes it declares (the same constant as its crate's `SCOPES`).
    pub scopes: &'static [Scope],
    pub http: Vec<Arc<dyn HttpService<D>>>,
    pub jobs: Vec<Arc<dyn JobService<D>>>,
    /// Consumers of the context's own queues, each its own function.
    pub consumers: Vec<Arc<dyn ConsumerService<D>>>,
    pub uploads: Vec<Arc<dyn UploadService<D>>>,
    pub housekeeping: Vec<Arc<dyn TaskService<D>>>,
}

impl<D: Sync + 'static> Context<D> {
    pub fn new(name: &'static str, tag: Tag, scopes: &'static [Scope]) -> Self {
        Self {
            name,
            tag,
            scopes,
            http: Vec::new(),
            jobs: Vec::new(),
            consumers: Vec::new(),
            uploads: Vec::new(),
            housekeeping: Vec::new(),
        }
    }

    pub fn http<S: FromDeps<D> + Clone>(mut self, function: HttpFunction<S>) -> Self {
        self.http.push(function.erase());
        self
    }

    pub fn job<S: FromDeps<D>>(mut self, job: Job<S>) -> Self {
        self.jobs.push(job.erase());
        self
    }

    pub fn consumer<S: FromDeps<D>>(mut self, consumer: Consumer<S>) -> Self {
        self.consumers.push(consumer.erase());
        self
    }

    pub fn upload<S: FromDeps<D>>(mut self, follow_up: UploadFollowUp<S>) -> Self {
        self.uploads.push(follow_up.erase());
        self
    }

    pub fn housekeeping<S: FromDeps<D>>(mut self, task: Task<S>) -> Self {
        self.housekeeping.push(task.erase());
        self
    }
}
