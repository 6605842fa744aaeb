//! Notifications: the consumer of the `notifications` queue, which writes in-app notifications
//! and sends email through the Mailer port as each user's preferences say, and the routes a user
//! reads them with. Other contexts send [`amanar_core::messages::Notify`] messages and never
//! depend on this crate.
//!
//! Reference: `docs/notifications.md`.

pub mod api;
pub mod store;
pub mod worker;

use std::sync::Arc;

use amanar_accounts::IdentityProvider;
use amanar_core::mail::Mailer;
use amanar_core::{Clock, Provide, Table};
use amanar_http::{Context, Scope, Tag};

pub use worker::PublicUrl;

/// Notifications are personal: no API-key scope reaches them.
pub const SCOPES: &[Scope] = &[];

pub const TAG: Tag = Tag {
    name: "notifications",
    description: "In-app notifications and email at each step of orders, retirements and project reviews",
};

/// The registration: the notifications function and the queue's consumer.
pub fn context<D>() -> Context<D>
where
    D: Provide<Arc<dyn IdentityProvider>>
        + Provide<Arc<dyn Table>>
        + Provide<Arc<dyn Clock>>
        + Provide<Arc<dyn Mailer>>
        + Provide<PublicUrl>
        + Sync
        + 'static,
{
    Context::new("notifications", TAG, SCOPES)
        .http(api::NOTIFICATIONS)
        .consumer(worker::NOTIFICATIONS)
}
