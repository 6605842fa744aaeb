//! The identity-provider port: credentials, confirmation codes and tokens. Cognito implements it in
//! AWS (`amanar-cognito`) and the local provider (`amanar-local-idp`) in the local runtime; one
//! conformance suite runs against both. Emails reach it already normalised (trimmed, lower-case)
//! and passwords already checked against the policy, so both faces refuse the same inputs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A new account's credentials and the attributes the provider keeps with them.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub email: String,
    pub password: String,
    pub name: String,
    pub account_type: String,
}

/// What the provider knows about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityUser {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub account_type: String,
    pub confirmed: bool,
    pub groups: Vec<String>,
    /// Whether sign-in asks for a TOTP code.
    pub mfa_enabled: bool,
}

/// Tokens of a session. The refresh token is opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: String,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
}

/// The outcome of a password check: a session, or a TOTP challenge to answer first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    Tokens(TokenSet),
    /// Answer with [`IdentityProvider::respond_totp`] and this opaque session within 3 minutes.
    Totp {
        session: String,
    },
}

impl SignIn {
    /// The tokens, for callers that know the account has no MFA (tests, the first admin).
    pub fn tokens(self) -> Option<TokenSet> {
        match self {
            SignIn::Tokens(tokens) => Some(tokens),
            SignIn::Totp { .. } => None,
        }
    }
}

/// Why the provider refused. Messages never say more than the client may learn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the password does not meet the policy: {0}")]
    WeakPassword(String),
    #[error("wrong email or password")]
    BadCredentials,
    #[error("the email address is not verified yet")]
    NotConfirmed,
    #[error("the code is wrong or has expired")]
    BadCode,
    #[error("a code was sent recently; retry in {retry_after_secs} seconds")]
    Cooldown { retry_after_secs: u64 },
    #[error("the refresh token is invalid, expired or revoked")]
    BadRefreshToken,
    #[error("the MFA session is invalid or has expired; log in again")]
    BadMfaSession,
    #[error("no TOTP enrolment is waiting for confirmation")]
    NoTotpEnrolment,
    #[error("no such user")]
    NoSuchUser,
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's own storage failed (the local provider keeps its accounts in the table);
    /// answered like any other storage error, so only a transient one is worth a retry.
    #[error(transparent)]
    Storage(#[from] amanar_core::TableError),
}

/// Where tokens come from and who they are for, to verify them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssuer {
    pub issuer: String,
    /// The app client tokens are issued to (`client_id` or `aud`).
    pub client_id: String,
}

/// A string claim of a JWT, read without checking its signature: only for tokens the provider
/// has just handed over in its own answer, never for one a caller brings.
pub fn unverified_claim(token: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims[name].as_str().map(str::to_owned)
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Creates an unconfirmed account and sends a confirmation code to its email. Returns the id.
    async fn sign_up(&self, new: &NewIdentity) -> Result<String, IdentityError>;
    /// Confirms the email with the code it was sent. Single use.
    async fn confirm_sign_up(&self, email: &str, code: &str) -> Result<(), IdentityError>;
    /// Sends a new confirmation code (the old one stops working).
    async fn resend_code(&self, email: &str) -> Result<(), IdentityError>;
    /// Checks a password and starts a session, or asks for a TOTP code when MFA is on.
    async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, IdentityError>;
    /// Completes a sign-in with the TOTP code for its challenge session.
    async fn respond_totp(&self, session: &str, code: &str) -> Result<TokenSet, IdentityError>;
    /// Starts TOTP enrolment: a new secret (base32) for the user's authenticator app. Needs the
    /// account's password ([`IdentityError::BadCredentials`] if wrong), so a stolen access token
    /// alone cannot put its own second factor on an account. Cognito needs it anyway: the
    /// tokens users hold cannot call its MFA API (see `amanar_cognito::pre_token`), so the
    /// adapter signs in through its enrolment client for the call.
    async fn totp_enrol(&self, user_id: &str, password: &str) -> Result<String, IdentityError>;
    /// Confirms enrolment with a code from the app, and the password again; from then on sign-in
    /// asks for a code.
    async fn totp_confirm(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError>;
    /// Turns TOTP off, given proof of both factors: the account's password
    /// ([`IdentityError::BadCredentials`] if wrong) and a current code from the app that was not
    /// used before ([`IdentityError::BadCode`]). Cognito checks both through an admin sign-in
    /// and its TOTP challenge; the local provider checks them itself.
    async fn totp_disable(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError>;
    /// New tokens for a refresh token.
    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError>;
    /// Tokens the provider issued outside these calls (Cognito's hosted UI, through its token
    /// endpoint), in the form [`IdentityProvider::refresh`] takes.
    fn adopt_tokens(&self, tokens: TokenSet) -> Result<TokenSet, IdentityError> {
        Ok(tokens)
    }
    /// Revokes every refresh token of the user.
    async fn sign_out(&self, user_id: &str) -> Result<(), IdentityError>;
    /// Sends a password-reset code (silently does nothing for an unknown email).
    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError>;
    /// Sets a new password with the reset code, and revokes every refresh token.
    async fn confirm_forgot_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), IdentityError>;
    async fn user(&self, user_id: &str) -> Result<IdentityUser, IdentityError>;
    async fn user_by_email(&self, email: &str) -> Result<IdentityUser, IdentityError>;
    /// Creates a confirmed account without any mail (the first admin).
    async fn create_confirmed(&self, new: &NewIdentity) -> Result<String, IdentityError>;
    /// Replaces the user's platform roles (groups); takes effect in tokens issued afterwards.
    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<(), IdentityError>;
    /// A session for someone a social identity provider vouched for: the account linked to
    /// (`provider`, `subject`), else the account with this verified email (then linked), else a new
    /// confirmed account. Returns the user id, the tokens and whether the account is new. Cognito
    /// federates through its hosted UI instead and does not support this.
    async fn federated_session(
        &self,
        provider: &str,
        subject: &str,
        email: &str,
        name: &str,
    ) -> Result<(String, SignIn, bool), IdentityError>;
    fn issuer(&self) -> TokenIssuer;
    /// The public keys tokens are signed with, as a JWKS document.
    async fn jwks(&self) -> Result<jsonwebtoken::jwk::JwkSet, IdentityError>;
}
