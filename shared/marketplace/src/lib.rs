//! The carbon marketplace: projects and their verification, issuance into a serial-exact credit
//! ledger, listings and the public catalogue.
//!
//! Built so far: registry serial numbers ([`serial`]), the project taxonomy ([`taxonomy`]), the
//! credit ledger ([`ledger`]) that listings and orders move credits through, issuance checks
//! ([`issuance`]), projects and their verification ([`projects`]), and their HTTP routes
//! ([`api`]: `api-projects`; [`api_credits`]: the public serial lookup). Pure domain code
//! and stores written on the Table port; nothing here touches an SDK.
//!
//! Reference: `docs/marketplace.md`.

pub mod api;
pub mod api_buyer_ratings;
pub mod api_catalogue;
pub mod api_credits;
pub mod api_listings;
pub mod buyer_ratings;
pub mod catalogue;
pub mod demo;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod issuance;
pub mod ledger;
pub mod listings;
pub mod money;
pub mod projects;
pub mod ratings;
pub mod serial;
pub mod taxonomy;

pub use ledger::{Account, Block, Issuance, Ledger, LedgerError, NewIssuance, Transfer};

use std::sync::Arc;

use amanar_core::{Ports, Provide};
use amanar_http::auth::AccountDirectory;
use amanar_http::{Context, OrgGuard, Scope, Tag};

/// API-key scopes of an organisation's projects.
pub const PROJECTS_READ: Scope = Scope::new("projects:read");
pub const PROJECTS_WRITE: Scope = Scope::new("projects:write");
/// API-key scope to sell an organisation's credits: list them, reprice, pause, close.
pub const LISTINGS_WRITE: Scope = Scope::new("listings:write");

/// Every API-key scope the marketplace declares.
pub const SCOPES: &[Scope] = &[PROJECTS_READ, PROJECTS_WRITE, LISTINGS_WRITE];

pub const TAG: Tag = Tag {
    name: "marketplace",
    description: "Carbon projects, their documents and their verification",
};

/// The marketplace's registration: the projects function and the follow-up of checked
/// project documents.
pub fn context<D>() -> Context<D>
where
    D: Provide<Ports>
        + Provide<Arc<dyn OrgGuard>>
        + Provide<Arc<dyn AccountDirectory>>
        + Provide<issuance::BufferPolicy>
        + Provide<Arc<catalogue::Catalogue>>
        + Sync
        + 'static,
{
    Context::new("marketplace", TAG, SCOPES)
        .http(api::PROJECTS)
        .http(api_credits::CREDITS)
        .http(api_catalogue::CATALOGUE)
        .upload(api::DOCUMENT_UPLOAD)
}
pub use serial::{Range, SerialBlock, SerialError, Standard, Vintage};
