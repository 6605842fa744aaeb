//! Accounts: registration with email verification, login with lockout, rotating sessions,
//! password reset, profiles, platform roles and organisations. The identity provider is a port
//! ([`identity::IdentityProvider`]) with adapters in their own crates: `amanar-cognito` in AWS,
//! `amanar-local-idp` locally.
//!
//! Reference: `docs/accounts.md`.

pub mod access;
pub mod api;
pub mod api_orgs;
pub mod apikeys;
pub mod audit;
mod context;
pub mod identity;
pub mod lockout;
pub mod members;
pub mod orgs;
pub mod policy;
pub mod profile;
pub mod service;
pub mod social;
#[cfg(test)]
mod testing;
pub mod totp;

pub use access::OrgAccess;
pub use context::{
    ADMIN_USERS, AUDIT_READ, AUTH, AccountsState, ME, MEMBERS_READ, ORGS, ORGS_READ, SCOPES, TAG,
    context,
};
pub use identity::{IdentityError, IdentityProvider};
pub use service::Accounts;
