//! The local identity provider itself: credentials keyed by email, sign-in with TOTP challenges,
//! and the identity-provider port over them. Its mailed codes are in `codes.rs`, its tokens in
//! `tokens.rs`.

use std::sync::Arc;

use amanar_accounts::identity::{
    IdentityError, IdentityProvider, IdentityUser, NewIdentity, SignIn, TokenIssuer, TokenSet,
};
use amanar_accounts::totp;
use amanar_core::table::{Condition, Item, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, keys, new_id};
use argon2::Argon2;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use crate::codes::{CODE_ATTEMPTS, CONFIRM, RESET};
use crate::mailbox::Mailbox;
use crate::secrets::{
    HashPool, argon2, code_key, hash_password, password_matches, random_bytes, sha256_hex,
    unavailable,
};
use crate::tokens::{LOCAL_CLIENT_ID, RefreshRecord, Signer};

/// How long a TOTP challenge stays open.
pub const MFA_SESSION_SECS: i64 = 180;

/// Credentials of one account, keyed by email.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Credentials {
    pub(crate) user_id: String,
    pub(crate) email: String,
    password_hash: String,
    confirmed: bool,
    name: String,
    account_type: String,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    /// Bumped to revoke every refresh token issued before.
    #[serde(default)]
    pub(crate) epoch: i64,
    /// Base32 TOTP secret in use, and one waiting for its first code.
    #[serde(default)]
    totp_secret: Option<String>,
    #[serde(default)]
    totp_pending: Option<String>,
    #[serde(default)]
    totp_enabled: bool,
    /// The last time step a code was accepted for (a code works once).
    #[serde(default)]
    totp_last_step: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MfaSession {
    email: String,
    expires_at: i64,
    #[serde(default)]
    attempts: i64,
}

/// How long a password check waits for a hashing slot before answering 503.
const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Two hashing threads per core: enough to keep the cores busy, and a bounded 38 MiB per core.
fn hash_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The embedded identity provider.
pub struct LocalIdentity {
    pub(crate) table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    pub(crate) mailbox: Mailbox,
    pub(crate) issuer: String,
    pub(crate) signer: Signer,
    argon2: Argon2<'static>,
    /// Where argon2 runs: two threads per core, so a login flood waits (and after [`HASH_WAIT`]
    /// gets a 503 with `Retry-After`) instead of taking the process's memory.
    hashing: HashPool,
    /// A real hash of a random password, checked when an email is unknown so that a login takes
    /// as long whether or not the account exists.
    decoy_hash: String,
    /// The HMAC key of stored codes (see [`Self::open`]).
    pub(crate) code_key: Vec<u8>,
}

impl LocalIdentity {
    /// Opens the provider: loads its signing key from the table, or makes one the first time.
    /// `issuer` is the public URL of the local runtime. `local_secret` is the runtime's secret (a
    /// file beside the database): mailed codes are stored as an HMAC under a key derived from it,
    /// so a copy of the table alone does not give six-digit codes away to a brute force.
    pub async fn open(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        issuer: impl Into<String>,
        local_secret: &[u8],
    ) -> Result<Self, IdentityError> {
        let signer = Signer::load(&table).await?;
        let argon2 = argon2();
        let hashing = HashPool::new(hash_threads(), HASH_WAIT);
        let decoy = URL_SAFE_NO_PAD.encode(random_bytes::<24>());
        let decoy_argon2 = argon2.clone();
        let decoy_hash = hashing
            .run(move |memory| hash_password(&decoy_argon2, &decoy, memory))
            .await??;
        Ok(Self {
            mailbox: Mailbox::new(table.clone(), clock.clone()),
            signer,
            table,
            clock,
            issuer: issuer.into(),
            argon2,
            hashing,
            decoy_hash,
            code_key: code_key(local_secret),
        })
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    async fn credentials(&self, email: &str) -> Result<Option<Credentials>, IdentityError> {
        match self.table.get(&keys::idp_credentials(email)).await? {
            Some(item) => Ok(Some(items::parse(item)?)),
            None => Ok(None),
        }
    }

    async fn credentials_of_user(&self, user_id: &str) -> Result<Credentials, IdentityError> {
        let page = self
            .table
            .query(
                &amanar_core::Query::partition(amanar_core::Index::Gsi1, keys::idp_user(user_id))
                    .limit(1),
            )
            .await?;
        let item = page
            .items
            .into_iter()
            .next()
            .ok_or(IdentityError::NoSuchUser)?;
        items::parse(item).map_err(IdentityError::from)
    }

    fn credentials_item(&self, credentials: &Credentials) -> Result<Item, IdentityError> {
        let mut item = items::with_key(&keys::idp_credentials(&credentials.email), credentials)?;
        keys::idp_user_credentials(&credentials.user_id).insert_into(&mut item);
        Ok(item)
    }

    pub(crate) async fn hash(&self, password: &str) -> Result<String, IdentityError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        self.hashing
            .run(move |memory| hash_password(&argon2, &password, memory))
            .await?
    }

    /// A user's credentials, once `password` is shown to be theirs
    /// ([`IdentityError::BadCredentials`] if not).
    async fn proven_credentials(
        &self,
        user_id: &str,
        password: &str,
    ) -> Result<Credentials, IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
        if self
            .verify_password(password, &credentials.password_hash)
            .await?
        {
            Ok(credentials)
        } else {
            Err(IdentityError::BadCredentials)
        }
    }

    async fn verify_password(&self, password: &str, hash: &str) -> Result<bool, IdentityError> {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        self.hashing
            .run(move |memory| password_matches(&password, &hash, memory))
            .await
    }

    fn identity_user(c: Credentials) -> IdentityUser {
        IdentityUser {
            user_id: c.user_id,
            email: c.email,
            name: c.name,
            account_type: c.account_type,
            confirmed: c.confirmed,
            groups: c.groups,
            mfa_enabled: c.totp_enabled,
        }
    }

    /// A session, or a TOTP challenge when the account has MFA on.
    async fn sign_in_as(&self, credentials: &Credentials) -> Result<SignIn, IdentityError> {
        if credentials.totp_enabled {
            let session = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
            let record = MfaSession {
                email: credentials.email.clone(),
                expires_at: self.now() + MFA_SESSION_SECS,
                attempts: 0,
            };
            let key = keys::idp_mfa_session(&sha256_hex(&[&session]));
            let mut item = items::with_key(&key, &record)?;
            item.insert(
                amanar_core::table::EXPIRES_AT.into(),
                record.expires_at.into(),
            );
            self.table
                .write(vec![WriteOp::put(item).when(Condition::NotExists)])
                .await?;
            return Ok(SignIn::Totp { session });
        }
        Ok(SignIn::Tokens(self.session(credentials).await?))
    }

    async fn create(
        &self,
        new: &NewIdentity,
        confirmed: bool,
    ) -> Result<Credentials, IdentityError> {
        let credentials = Credentials {
            user_id: new_id("usr"),
            email: new.email.clone(),
            password_hash: self.hash(&new.password).await?,
            confirmed,
            name: new.name.clone(),
            account_type: new.account_type.clone(),
            groups: Vec::new(),
            epoch: 0,
            totp_secret: None,
            totp_pending: None,
            totp_enabled: false,
            totp_last_step: 0,
        };
        let item = self.credentials_item(&credentials)?;
        match self
            .table
            .write(vec![WriteOp::put(item).when(Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(credentials),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl IdentityProvider for LocalIdentity {
    async fn sign_up(&self, new: &NewIdentity) -> Result<String, IdentityError> {
        let credentials = self.create(new, false).await?;
        match self.send_code(&new.email, CONFIRM).await {
            Ok(()) | Err(IdentityError::Cooldown { .. }) => Ok(credentials.user_id),
            Err(e) => Err(e),
        }
    }

    async fn confirm_sign_up(&self, email: &str, code: &str) -> Result<(), IdentityError> {
        let credentials = self
            .credentials(email)
            .await?
            .ok_or(IdentityError::BadCode)?;
        if credentials.confirmed {
            // The code was used, or never existed: the same answer as any wrong code.
            return Err(IdentityError::BadCode);
        }
        let consume = self.check_code(email, CONFIRM, code).await?;
        let confirm = WriteOp::update(
            keys::idp_credentials(email),
            Update::new().set("confirmed", true),
        )
        .when(Condition::Exists);
        match self.table.write(vec![consume, confirm]).await {
            Ok(()) => Ok(()),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::BadCode),
            Err(e) => Err(e.into()),
        }
    }

    async fn resend_code(&self, email: &str) -> Result<(), IdentityError> {
        match self.credentials(email).await? {
            Some(c) if !c.confirmed => self.send_code(email, CONFIRM).await,
            // Unknown or already confirmed: nothing to send, and nothing to tell.
            _ => Ok(()),
        }
    }

    async fn sign_in(&self, email: &str, password: &str) -> Result<SignIn, IdentityError> {
        let credentials = self.credentials(email).await?;
        let hash = credentials
            .as_ref()
            .map_or(self.decoy_hash.as_str(), |c| c.password_hash.as_str());
        let matches = self.verify_password(password, hash).await?;
        let credentials = match credentials {
            Some(c) if matches => c,
            _ => return Err(IdentityError::BadCredentials),
        };
        if !credentials.confirmed {
            return Err(IdentityError::NotConfirmed);
        }
        self.sign_in_as(&credentials).await
    }

    async fn respond_totp(&self, session: &str, code: &str) -> Result<TokenSet, IdentityError> {
        let key = keys::idp_mfa_session(&sha256_hex(&[session.trim()]));
        let item = self
            .table
            .get(&key)
            .await?
            .ok_or(IdentityError::BadMfaSession)?;
        let record: MfaSession = items::parse(item)?;
        if record.expires_at <= self.now() || record.attempts >= CODE_ATTEMPTS {
            return Err(IdentityError::BadMfaSession);
        }
        self.spend_attempt(&key, record.attempts).await?;
        let credentials = self
            .credentials(&record.email)
            .await?
            .ok_or(IdentityError::BadMfaSession)?;
        let secret = credentials
            .totp_secret
            .as_deref()
            .and_then(totp::base32_decode)
            .ok_or(IdentityError::BadMfaSession)?;
        let step = totp::matching_step(&secret, code, self.now())
            .filter(|step| *step > credentials.totp_last_step);
        let Some(step) = step else {
            return Err(IdentityError::BadCode);
        };
        let consume = WriteOp::delete(key).when(Condition::Exists);
        let used = WriteOp::update(
            keys::idp_credentials(&credentials.email),
            Update::new().set("totpLastStep", step),
        )
        .when(Condition::Equals(
            "totpLastStep".into(),
            credentials.totp_last_step.into(),
        ));
        let (refresh_token, store) = self.refresh_token(&credentials)?;
        match self.table.write(vec![consume, used, store]).await {
            Ok(()) => self.tokens(&credentials, refresh_token),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::BadCode),
            Err(e) => Err(e.into()),
        }
    }

    async fn totp_enrol(&self, user_id: &str, password: &str) -> Result<String, IdentityError> {
        let credentials = self.proven_credentials(user_id, password).await?;
        let secret = totp::base32_encode(&random_bytes::<20>());
        self.table
            .write(vec![
                WriteOp::update(
                    keys::idp_credentials(&credentials.email),
                    Update::new().set("totpPending", secret.clone()),
                )
                .when(Condition::Exists),
            ])
            .await?;
        Ok(secret)
    }

    async fn totp_confirm(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let credentials = self.proven_credentials(user_id, password).await?;
        let pending = credentials
            .totp_pending
            .clone()
            .ok_or(IdentityError::NoTotpEnrolment)?;
        let secret = totp::base32_decode(&pending).ok_or(IdentityError::NoTotpEnrolment)?;
        let step = totp::matching_step(&secret, code, self.now()).ok_or(IdentityError::BadCode)?;
        let enable = Update::new()
            .set("totpSecret", pending.clone())
            .set("totpEnabled", true)
            .set("totpLastStep", step)
            .remove("totpPending");
        self.table
            .write(vec![
                WriteOp::update(keys::idp_credentials(&credentials.email), enable)
                    .when(Condition::Equals("totpPending".into(), pending.into())),
            ])
            .await
            .map_err(|e| match e {
                TableError::ConditionFailed { .. } => IdentityError::NoTotpEnrolment,
                other => other.into(),
            })
    }

    async fn totp_disable(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        // Proof of both factors, so a stolen access token alone cannot turn the second one off.
        let credentials = self.proven_credentials(user_id, password).await?;
        let mut disable = Update::new()
            .set("totpEnabled", false)
            .remove("totpSecret")
            .remove("totpPending");
        let condition = if credentials.totp_enabled {
            let secret = credentials
                .totp_secret
                .as_deref()
                .and_then(totp::base32_decode)
                .ok_or(IdentityError::BadCode)?;
            // Like a sign-in, a code works once: a step at or before the last one used is refused,
            // and the write holds only if no other use of a code came first.
            let step = totp::matching_step(&secret, code, self.now())
                .filter(|step| *step > credentials.totp_last_step)
                .ok_or(IdentityError::BadCode)?;
            disable = disable.set("totpLastStep", step);
            Condition::Equals("totpLastStep".into(), credentials.totp_last_step.into())
        } else {
            Condition::Exists
        };
        let write =
            WriteOp::update(keys::idp_credentials(&credentials.email), disable).when(condition);
        match self.table.write(vec![write]).await {
            Ok(()) => Ok(()),
            Err(TableError::ConditionFailed { .. }) if credentials.totp_enabled => {
                Err(IdentityError::BadCode)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, IdentityError> {
        let key = keys::idp_refresh_token(&sha256_hex(&[refresh_token.trim()]));
        let item = self
            .table
            .get(&key)
            .await?
            .ok_or(IdentityError::BadRefreshToken)?;
        let record: RefreshRecord = items::parse(item)?;
        if record.expires_at <= self.now() {
            return Err(IdentityError::BadRefreshToken);
        }
        if record.rotated {
            // A rotated token came back: it leaked. Revoke the whole session family.
            tracing::warn!(user_id = %record.user_id, "refresh token reuse; revoking the user's sessions");
            self.bump_epoch(&record.email).await?;
            return Err(IdentityError::BadRefreshToken);
        }
        let credentials = self
            .credentials(&record.email)
            .await?
            .ok_or(IdentityError::BadRefreshToken)?;
        if credentials.epoch != record.epoch || credentials.user_id != record.user_id {
            return Err(IdentityError::BadRefreshToken);
        }
        let (next, store) = self.refresh_token(&credentials)?;
        let rotate = WriteOp::update(key, Update::new().set("rotated", true))
            .when(Condition::Equals("rotated".into(), false.into()));
        match self.table.write(vec![rotate, store]).await {
            Ok(()) => self.tokens(&credentials, next),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::BadRefreshToken),
            Err(e) => Err(e.into()),
        }
    }

    async fn sign_out(&self, user_id: &str) -> Result<(), IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
        self.bump_epoch(&credentials.email).await
    }

    async fn forgot_password(&self, email: &str) -> Result<(), IdentityError> {
        match self.credentials(email).await? {
            Some(_) => self.send_code(email, RESET).await,
            None => Ok(()),
        }
    }

    async fn confirm_forgot_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), IdentityError> {
        if self.credentials(email).await?.is_none() {
            return Err(IdentityError::BadCode);
        }
        let consume = self.check_code(email, RESET, code).await?;
        let hash = self.hash(new_password).await?;
        // The code proves the mailbox, so a reset also confirms the email, as Cognito does.
        let reset = WriteOp::update(
            keys::idp_credentials(email),
            Update::new()
                .set("passwordHash", hash)
                .set("confirmed", true)
                .add("epoch", 1),
        )
        .when(Condition::Exists);
        match self.table.write(vec![consume, reset]).await {
            Ok(()) => Ok(()),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::BadCode),
            Err(e) => Err(e.into()),
        }
    }

    async fn user(&self, user_id: &str) -> Result<IdentityUser, IdentityError> {
        let c = self.credentials_of_user(user_id).await?;
        Ok(Self::identity_user(c))
    }

    async fn user_by_email(&self, email: &str) -> Result<IdentityUser, IdentityError> {
        let c = self
            .credentials(email)
            .await?
            .ok_or(IdentityError::NoSuchUser)?;
        Ok(Self::identity_user(c))
    }

    async fn create_confirmed(&self, new: &NewIdentity) -> Result<String, IdentityError> {
        Ok(self.create(new, true).await?.user_id)
    }

    async fn set_groups(&self, user_id: &str, groups: &[String]) -> Result<(), IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
        let groups = serde_json::to_value(groups).map_err(unavailable)?;
        self.table
            .write(vec![
                WriteOp::update(
                    keys::idp_credentials(&credentials.email),
                    Update::new().set("groups", groups),
                )
                .when(Condition::Exists),
            ])
            .await
            .map_err(IdentityError::from)
    }

    async fn federated_session(
        &self,
        provider: &str,
        subject: &str,
        email: &str,
        name: &str,
    ) -> Result<(String, SignIn, bool), IdentityError> {
        #[derive(Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Link {
            user_id: String,
            email: String,
        }
        let link_key = keys::idp_social_link(provider, subject);
        if let Some(item) = self.table.get(&link_key).await? {
            let link: Link = items::parse(item)?;
            let credentials = self
                .credentials(&link.email)
                .await?
                .ok_or(IdentityError::NoSuchUser)?;
            return Ok((
                credentials.user_id.clone(),
                self.sign_in_as(&credentials).await?,
                false,
            ));
        }
        let (mut credentials, created) = match self.credentials(email).await? {
            Some(existing) => (existing, false),
            None => {
                // No password anyone knows: the owner can set one with a password reset.
                let new = NewIdentity {
                    email: email.to_owned(),
                    password: URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
                    name: name.to_owned(),
                    account_type: "individual".into(),
                };
                match self.create(&new, true).await {
                    Ok(c) => (c, true),
                    Err(IdentityError::EmailTaken) => (
                        self.credentials(email)
                            .await?
                            .ok_or(IdentityError::NoSuchUser)?,
                        false,
                    ),
                    Err(e) => return Err(e),
                }
            }
        };
        let link = Link {
            user_id: credentials.user_id.clone(),
            email: email.to_owned(),
        };
        let mut ops = vec![WriteOp::put(items::with_key(&link_key, &link)?)];
        if !credentials.confirmed {
            // The provider verified the address, which is what confirmation proves. Whoever
            // registered it unconfirmed never proved it: their password and sessions go.
            let unusable = self
                .hash(&URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
                .await?;
            ops.push(
                WriteOp::update(
                    keys::idp_credentials(email),
                    Update::new()
                        .set("confirmed", true)
                        .set("passwordHash", unusable)
                        .set("totpEnabled", false)
                        .remove("totpSecret")
                        .remove("totpPending")
                        .add("epoch", 1),
                )
                .when(Condition::Equals("confirmed".into(), false.into())),
            );
            credentials.confirmed = true;
            credentials.totp_enabled = false;
            credentials.epoch += 1;
        }
        self.table.write(ops).await.map_err(|e| match e {
            TableError::ConditionFailed { .. } => {
                IdentityError::Unavailable("the account changed meanwhile; retry".into())
            }
            other => other.into(),
        })?;
        Ok((
            credentials.user_id.clone(),
            self.sign_in_as(&credentials).await?,
            created,
        ))
    }

    fn issuer(&self) -> TokenIssuer {
        TokenIssuer {
            issuer: self.issuer.clone(),
            client_id: LOCAL_CLIENT_ID.into(),
        }
    }

    async fn jwks(&self) -> Result<JwkSet, IdentityError> {
        Ok(self.signer.jwks.clone())
    }
}
