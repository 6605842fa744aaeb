//! Accounts: registration with email verification, login with lockout, rotating sessions,
//! password reset, profiles and platform roles. The identity provider is a port
//! ([`identity::IdentityProvider`]): Cognito in AWS, [`local_idp::LocalIdentity`] locally.
//!
//! Reference: `docs/accounts.md`.

pub mod api;
pub mod api_orgs;
pub mod apikeys;
pub mod audit;
mod context;
pub mod identity;
pub mod local_idp;
pub mod mailbox;
pub mod orgs;
pub mod policy;
pub mod service;
pub mod social;
pub mod totp;

pub use context::{
    ADMIN_USERS, AUDIT_READ, AUTH, AccountsState, ME, MEMBERS_READ, ORGS, ORGS_READ, SCOPES, TAG,
    context,
};
pub use identity::{IdentityError, IdentityProvider};
pub use local_idp::LocalIdentity;
pub use mailbox::{Mail, Mailbox};
pub use service::Accounts;
