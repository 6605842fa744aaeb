//! The local runtime's identity provider, an adapter of the identity-provider port
//! ([`amanar_accounts::IdentityProvider`]) built on the Table port, so it needs no network:
//! argon2id password hashes, single-use expiring codes compared in constant time, ES256 access
//! tokens with a JWKS, and rotating refresh tokens with reuse detection. Its mail goes to the local
//! [`Mailbox`], which is also the local runtime's Mailer.
//!
//! It mirrors what the Cognito user pool (`amanar-cognito`) does in AWS, and the same conformance
//! suite runs on both. Reference: `docs/accounts.md`.

mod codes;
pub mod mailbox;
mod provider;
mod secrets;
mod tokens;

pub use codes::{CODE_ATTEMPTS, CONFIRM_CODE_SECS, RESEND_COOLDOWN_SECS, RESET_CODE_SECS};
pub use mailbox::{Mail, Mailbox};
pub use provider::{LocalIdentity, MFA_SESSION_SECS};
pub use tokens::{ACCESS_TOKEN_SECS, LOCAL_CLIENT_ID, REFRESH_TOKEN_SECS};
