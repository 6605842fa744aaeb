//! What accounts' unit tests share: a fresh embedded table, a manual clock, and an identity provider
//! that knows a fixed set of users and one password. Unit tests cannot use the local provider: it
//! links the library build of this crate, not the test build, so its port would be another trait.

use std::sync::Arc;

use amanar_core::{ManualClock, Table};
use async_trait::async_trait;
use chrono::TimeZone;

use crate::identity::{
    IdentityError, IdentityProvider, IdentityUser, NewIdentity, SignIn, TokenIssuer, TokenSet,
};

/// An embedded table in a directory removed when the test ends, and a clock only the test moves.
pub(crate) struct Store {
    pub table: Arc<dyn Table>,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub(crate) fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let embedded = amanar_embedded::EmbeddedStore::open(dir.path()).unwrap();
    Store {
        table: Arc::new(embedded.table.clone()),
        clock: Arc::new(ManualClock::at(
            chrono::Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap(),
        )),
        _dir: dir,
    }
}

/// The password [`Provider`] accepts for every user.
pub(crate) const PASSWORD: &str = "Correct horse 7 battery";

/// A provider of a few users, each with [`PASSWORD`]. Sign-in answers a session whose access token
/// is not a JWT (so no login is audited); anything the tests do not need is unavailable.
#[derive(Default)]
pub(crate) struct Provider {
    pub users: Vec<IdentityUser>,
}

impl Provider {
    pub fn with(users: impl IntoIterator<Item = IdentityUser>) -> Arc<Self> {
        Arc::new(Self {
            users: users.into_iter().collect(),
        })
    }

    fn find(&self, found: impl Fn(&IdentityUser) -> bool) -> Result<IdentityUser, IdentityError> {
        self.users
            .iter()
            .find(|u| found(u))
            .cloned()
            .ok_or(IdentityError::NoSuchUser)
    }
}

pub(crate) fn user(user_id: &str, account_type: &str, mfa_enabled: bool) -> IdentityUser {
    IdentityUser {
        user_id: user_id.to_owned(),
        email: format!("{user_id}@example.com"),
        name: format!("User {user_id}"),
        account_type: account_type.to_owned(),
        confirmed: true,
        groups: Vec::new(),
        mfa_enabled,
    }
}

fn not_here() -> IdentityError {
    IdentityError::Unavailable("not part of this test".into())
}

#[async_trait]
impl IdentityProvider for Provider {
    async fn sign_up(&self, _: &NewIdentity) -> Result<String, IdentityError> {
        Err(not_here())
    }
    async fn confirm_sign_up(&self, _: &str, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn resend_code(&self, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, IdentityError> {
        match self.find(|u| u.email == email) {
            Ok(_) if password == PASSWORD => Ok(SignIn::Tokens(TokenSet {
                access_token: "not-a-jwt".into(),
                refresh_token: "opaque".into(),
                expires_in: 900,
            })),
            _ => Err(IdentityError::BadCredentials),
        }
    }
    async fn respond_totp(&self, _: &str, _: &str) -> Result<TokenSet, IdentityError> {
        Err(not_here())
    }
    async fn totp_enrol(&self, _: &str, _: &str) -> Result<String, IdentityError> {
        Err(not_here())
    }
    async fn totp_confirm(&self, _: &str, _: &str, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn totp_disable(&self, _: &str, _: &str, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn refresh(&self, _: &str) -> Result<TokenSet, IdentityError> {
        Err(not_here())
    }
    async fn sign_out(&self, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn forgot_password(&self, _: &str) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn confirm_forgot_password(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn user(&self, user_id: &str) -> Result<IdentityUser, IdentityError> {
        self.find(|u| u.user_id == user_id)
    }
    async fn user_by_email(&self, email: &str) -> Result<IdentityUser, IdentityError> {
        self.find(|u| u.email == email)
    }
    async fn create_confirmed(&self, _: &NewIdentity) -> Result<String, IdentityError> {
        Err(not_here())
    }
    async fn set_groups(&self, _: &str, _: &[String]) -> Result<(), IdentityError> {
        Err(not_here())
    }
    async fn federated_session(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<(String, SignIn, bool), IdentityError> {
        Err(not_here())
    }
    fn issuer(&self) -> TokenIssuer {
        TokenIssuer {
            issuer: "https://issuer.test".into(),
            client_id: "test".into(),
        }
    }
    async fn jwks(&self) -> Result<jsonwebtoken::jwk::JwkSet, IdentityError> {
        Ok(jsonwebtoken::jwk::JwkSet { keys: Vec::new() })
    }
}
