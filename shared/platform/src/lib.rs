//! Platform context: service health, the job canary that proves schedules, queues and workers run,
//! housekeeping, and checked uploads.
//!
//! Reference: `docs/platform.md`.

pub mod canary;
pub mod health;
pub mod outbox;
pub mod uploads;

use std::sync::Arc;

use amanar_core::{Clock, Ports, Provide, Table};
use amanar_http::{Context, Scope, Tag};

/// The platform declares no API-key scope: health and documentation are public.
pub const SCOPES: &[Scope] = &[];

pub const TAG: Tag = Tag {
    name: "platform",
    description: "Health, documentation and operations",
};

/// The platform's registration: the health function, the canary job, and the housekeeping that
/// sends the canary, settles uploads whose check was never triggered, and sends the outbox's
/// messages that their senders left behind.
pub fn context<D>() -> Context<D>
where
    D: Provide<Arc<dyn Table>> + Provide<Arc<dyn Clock>> + Provide<Ports> + Sync + 'static,
{
    Context::new("platform", TAG, SCOPES)
        .http(health::FUNCTION)
        .job(canary::JOB)
        .housekeeping(canary::SEND)
        .housekeeping(uploads::SWEEP)
        .housekeeping(outbox::RESEND)
}
