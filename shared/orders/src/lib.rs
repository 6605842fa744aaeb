//! Orders and payments: orders that reserve ledger credits from listings, the payments port (the
//! Stripe adapter is `amanar-stripe`; [`payments::LocalPayments`] simulates it locally), the
//! payment webhook, the purchase worker that allocates paid credits to holdings, and the expiry
//! sweeper that gives unpaid reservations back; retirements from holdings with their worker,
//! public record and PDF certificate.
//!
//! Reference: `docs/orders.md`.

pub mod api;
pub mod api_retirements;
pub mod certificate;
pub mod holdings;
pub mod notices;
pub mod orders;
pub mod payments;
pub mod retirement_worker;
pub mod retirements;
pub mod signature;
pub mod worker;

use std::sync::Arc;

use amanar_core::{Ports, Provide};
use amanar_http::{Context, OrgGuard, Scope, Tag};

pub use orders::{Order, OrderSettings, OrderStatus, Orders};
pub use payments::{LocalPayments, Payments};
pub use signature::SigningSecrets;

/// API-key scopes of an organisation's orders and holdings.
pub const ORDERS_READ: Scope = Scope::new("orders:read");
pub const ORDERS_WRITE: Scope = Scope::new("orders:write");
/// Retiring an organisation's credits (from a holding, or on purchase with `retire: true`): apart
/// from `orders:write`, because a retirement is final and a key made to buy must not make one.
pub const RETIREMENTS_WRITE: Scope = Scope::new("retirements:write");

/// Every API-key scope the context declares.
pub const SCOPES: &[Scope] = &[ORDERS_READ, ORDERS_WRITE, RETIREMENTS_WRITE];

pub const TAG: Tag = Tag {
    name: "orders",
    description: "Buying and retiring credits: orders, payments, holdings, retirements",
};

/// The registration: the orders, retirements and webhook functions, the purchase and retirement
/// workers, the expiry sweeper and the retirement sweeper.
pub fn context<D>() -> Context<D>
where
    D: Provide<Ports>
        + Provide<Arc<dyn OrgGuard>>
        + Provide<Arc<dyn Payments>>
        + Provide<OrderSettings>
        + Provide<SigningSecrets>
        + Sync
        + 'static,
{
    Context::new("orders", TAG, SCOPES)
        .http(api::ORDERS)
        .http(api_retirements::RETIREMENTS)
        .http(api_retirements::PUBLIC_RETIREMENTS)
        .http(api::STRIPE_WEBHOOK)
        .consumer(worker::PURCHASES)
        .consumer(retirement_worker::RETIREMENTS)
        .housekeeping(worker::EXPIRE_ORDERS)
        .housekeeping(retirement_worker::RESEND_RETIREMENTS)
}
