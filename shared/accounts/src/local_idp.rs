//! The local runtime's identity provider, built on the Table port (so it needs no network): argon2id
//! password hashes, single-use expiring codes compared in constant time, ES256 access tokens with a
//! JWKS, and rotating refresh tokens with reuse detection. Mail goes to the local mailbox.
//!
//! It mirrors what the Cognito user pool does in AWS, and the same conformance suite runs on both.

use std::sync::Arc;

use amanar_core::table::{Condition, Item, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, keys, new_id};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::identity::{
    IdentityError, IdentityProvider, IdentityUser, NewIdentity, SignIn, TokenIssuer, TokenSet,
};
use crate::mailbox::Mailbox;
use crate::totp;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECS: i64 = 15 * 60;
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_SECS: i64 = 30 * 24 * 3600;
/// Lifetime of an email-confirmation code (Cognito: 24 hours).
pub const CONFIRM_CODE_SECS: i64 = 24 * 3600;
/// Lifetime of a password-reset code (Cognito: 1 hour).
pub const RESET_CODE_SECS: i64 = 3600;
/// Wrong guesses after which a code is void.
pub const CODE_ATTEMPTS: i64 = 5;
/// Minimum time between two codes sent to one address.
pub const RESEND_COOLDOWN_SECS: i64 = 60;
/// How long a TOTP challenge stays open.
pub const MFA_SESSION_SECS: i64 = 180;
/// The app client the local provider issues tokens to.
pub const LOCAL_CLIENT_ID: &str = "amanar-local";

const CONFIRM: &str = "confirm";
const RESET: &str = "reset";

/// Credentials of one account, keyed by email.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    user_id: String,
    email: String,
    password_hash: String,
    confirmed: bool,
    name: String,
    account_type: String,
    #[serde(default)]
    groups: Vec<String>,
    /// Bumped to revoke every refresh token issued before.
    #[serde(default)]
    epoch: i64,
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Code {
    hash: String,
    expires_at: i64,
    sent_at: i64,
    #[serde(default)]
    attempts: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshRecord {
    user_id: String,
    email: String,
    epoch: i64,
    expires_at: i64,
    rotated: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningKeyRecord {
    kid: String,
    /// PKCS#8 DER of the P-256 private key, base64.
    pkcs8: String,
    x: String,
    y: String,
}

#[derive(Debug, Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    client_id: &'a str,
    token_use: &'static str,
    iat: i64,
    exp: i64,
    jti: String,
    username: &'a str,
    #[serde(rename = "cognito:groups")]
    groups: &'a [String],
}

struct Signer {
    kid: String,
    key: EncodingKey,
    jwks: JwkSet,
}

/// The embedded identity provider.
pub struct LocalIdentity {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    mailbox: Mailbox,
    issuer: String,
    signer: Signer,
    argon2: Argon2<'static>,
    /// A real hash of a random password, checked when an email is unknown so that a login takes
    /// as long whether or not the account exists.
    decoy_hash: String,
}

fn unavailable(error: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(error.to_string())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// A uniformly random six-digit code.
fn six_digits() -> String {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        // Reject the top sliver so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// OWASP's argon2id baseline: 19 MiB, two passes, one lane.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

fn hash_password(argon2: &Argon2<'_>, password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(unavailable)?;
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(unavailable)
}

fn password_matches(argon2: &Argon2<'_>, password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| argon2.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

impl Signer {
    fn from_record(record: &SigningKeyRecord) -> Result<Self, IdentityError> {
        let der = STANDARD.decode(&record.pkcs8).map_err(unavailable)?;
        let jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(record.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: record.x.clone(),
                y: record.y.clone(),
            }),
        };
        Ok(Signer {
            kid: record.kid.clone(),
            key: EncodingKey::from_ec_der(&der),
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    fn generate() -> Result<SigningKeyRecord, IdentityError> {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&random_bytes::<32>()) {
                break key;
            }
        };
        let der = secret.to_pkcs8_der().map_err(unavailable)?;
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let x = URL_SAFE_NO_PAD.encode(point.x().ok_or_else(|| unavailable("no x"))?);
        let y = URL_SAFE_NO_PAD.encode(point.y().ok_or_else(|| unavailable("no y"))?);
        let kid = sha256_hex(&[&x, &y])[..16].to_owned();
        Ok(SigningKeyRecord {
            kid,
            pkcs8: STANDARD.encode(der.as_bytes()),
            x,
            y,
        })
    }
}

impl LocalIdentity {
    /// Opens the provider: loads its signing key from the table, or makes one the first time.
    /// `issuer` is the public URL of the local runtime.
    pub async fn open(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        issuer: impl Into<String>,
    ) -> Result<Self, IdentityError> {
        let key = keys::idp_signing_key();
        let record = match table.get(&key).await? {
            Some(item) => items::parse::<SigningKeyRecord>(item)?,
            None => {
                let fresh = Signer::generate()?;
                let item = items::with_key(&key, &fresh)?;
                match table
                    .write(vec![WriteOp::put(item).when(Condition::NotExists)])
                    .await
                {
                    Ok(()) => fresh,
                    // Another process made one first: use theirs.
                    Err(TableError::ConditionFailed { .. }) => {
                        let item = table.get(&key).await?;
                        items::parse(item.ok_or_else(|| unavailable("signing key vanished"))?)?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let argon2 = argon2();
        let decoy_hash = hash_password(&argon2, &URL_SAFE_NO_PAD.encode(random_bytes::<24>()))?;
        Ok(Self {
            mailbox: Mailbox::new(table.clone(), clock.clone()),
            table,
            clock,
            issuer: issuer.into(),
            signer: Signer::from_record(&record)?,
            argon2,
            decoy_hash,
        })
    }

    fn now(&self) -> i64 {
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

    async fn hash(&self, password: &str) -> Result<String, IdentityError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_password(&argon2, &password))
            .await
            .map_err(unavailable)?
    }

    async fn verify_password(&self, password: &str, hash: &str) -> Result<bool, IdentityError> {
        let argon2 = self.argon2.clone();
        let (password, hash) = (password.to_owned(), hash.to_owned());
        tokio::task::spawn_blocking(move || password_matches(&argon2, &password, &hash))
            .await
            .map_err(unavailable)
    }

    /// Makes a code for `purpose`, stores its hash and mails it, unless one went out less than a
    /// minute ago.
    async fn send_code(&self, email: &str, purpose: &str) -> Result<(), IdentityError> {
        let key = keys::idp_code(email, purpose);
        let now = self.now();
        if let Some(item) = self.table.get(&key).await? {
            let previous: Code = items::parse(item)?;
            let wait = previous.sent_at + RESEND_COOLDOWN_SECS - now;
            if wait > 0 {
                return Err(IdentityError::Cooldown {
                    retry_after_secs: wait as u64,
                });
            }
        }
        let code = six_digits();
        let lifetime = if purpose == CONFIRM {
            CONFIRM_CODE_SECS
        } else {
            RESET_CODE_SECS
        };
        let record = Code {
            hash: sha256_hex(&[email, purpose, &code]),
            expires_at: now + lifetime,
            sent_at: now,
            attempts: 0,
        };
        let item = items::with_key(&key, &record)?;
        self.table.write(vec![WriteOp::put(item)]).await?;
        let (subject, text) = if purpose == CONFIRM {
            (
                "Verify your AmanarCarbon email",
                format!("Your AmanarCarbon verification code is {code}. It expires in 24 hours."),
            )
        } else {
            (
                "Reset your AmanarCarbon password",
                format!(
                    "Your AmanarCarbon password reset code is {code}. It expires in 1 hour. If you did not ask for it, ignore this mail."
                ),
            )
        };
        self.mailbox
            .send(email, subject, &text)
            .await
            .map_err(IdentityError::from)
    }

    /// Counts one guess against a code or MFA session before it is compared, conditional on the
    /// count just read: parallel guesses cannot all see the same count and exceed the limit.
    async fn spend_attempt(&self, key: &amanar_core::Key, seen: i64) -> Result<(), IdentityError> {
        let spend = WriteOp::update(key.clone(), Update::new().add("attempts", 1))
            .when(Condition::Equals("attempts".into(), seen.into()));
        match self.table.write(vec![spend]).await {
            Ok(()) => Ok(()),
            Err(TableError::ConditionFailed { .. }) => Err(IdentityError::BadCode),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a code; a wrong guess counts against it. On success returns the operation that
    /// consumes it, to be written together with the code's effect.
    async fn check_code(
        &self,
        email: &str,
        purpose: &str,
        code: &str,
    ) -> Result<WriteOp, IdentityError> {
        let key = keys::idp_code(email, purpose);
        let item = self.table.get(&key).await?.ok_or(IdentityError::BadCode)?;
        let stored: Code = items::parse(item)?;
        if stored.expires_at <= self.now() || stored.attempts >= CODE_ATTEMPTS {
            return Err(IdentityError::BadCode);
        }
        self.spend_attempt(&key, stored.attempts).await?;
        let given = sha256_hex(&[email, purpose, code.trim()]);
        if !bool::from(given.as_bytes().ct_eq(stored.hash.as_bytes())) {
            return Err(IdentityError::BadCode);
        }
        // Consumed exactly once: the delete only applies while the code is the one checked.
        Ok(WriteOp::delete(key).when(Condition::Equals("hash".into(), stored.hash.into())))
    }

    fn access_token(&self, credentials: &Credentials) -> Result<String, IdentityError> {
        let now = self.now();
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: &credentials.user_id,
            client_id: LOCAL_CLIENT_ID,
            token_use: "access",
            iat: now,
            exp: now + ACCESS_TOKEN_SECS,
            jti: new_id("at"),
            username: &credentials.user_id,
            groups: &credentials.groups,
        };
        let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.signer.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signer.key).map_err(unavailable)
    }

    /// A new refresh token record, and the token itself (only its hash is stored).
    fn refresh_token(&self, credentials: &Credentials) -> Result<(String, WriteOp), IdentityError> {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let record = RefreshRecord {
            user_id: credentials.user_id.clone(),
            email: credentials.email.clone(),
            epoch: credentials.epoch,
            expires_at: self.now() + REFRESH_TOKEN_SECS,
            rotated: false,
        };
        let item = items::with_key(&keys::idp_refresh_token(&sha256_hex(&[&token])), &record)?;
        Ok((token, WriteOp::put(item).when(Condition::NotExists)))
    }

    fn tokens(
        &self,
        credentials: &Credentials,
        refresh_token: String,
    ) -> Result<TokenSet, IdentityError> {
        Ok(TokenSet {
            access_token: self.access_token(credentials)?,
            refresh_token,
            expires_in: ACCESS_TOKEN_SECS as u64,
        })
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

    /// Stores a new refresh token and returns the session's tokens.
    async fn session(&self, credentials: &Credentials) -> Result<TokenSet, IdentityError> {
        let (refresh_token, store) = self.refresh_token(credentials)?;
        self.table.write(vec![store]).await?;
        self.tokens(credentials, refresh_token)
    }

    async fn bump_epoch(&self, email: &str) -> Result<(), IdentityError> {
        self.table
            .write(vec![
                WriteOp::update(keys::idp_credentials(email), Update::new().add("epoch", 1))
                    .when(Condition::Exists),
            ])
            .await
            .map_err(IdentityError::from)
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

    async fn totp_enrol(
        &self,
        user_id: &str,
        _access_token: &str,
    ) -> Result<String, IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
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
        _access_token: &str,
        code: &str,
    ) -> Result<(), IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
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

    async fn totp_disable(&self, user_id: &str, code: &str) -> Result<(), IdentityError> {
        let credentials = self.credentials_of_user(user_id).await?;
        if credentials.totp_enabled {
            // Proof of the second factor, so a stolen access token alone cannot turn it off.
            let secret = credentials
                .totp_secret
                .as_deref()
                .and_then(totp::base32_decode)
                .ok_or(IdentityError::BadCode)?;
            // Any code of the current window will do (unlike a sign-in, nothing is issued).
            totp::matching_step(&secret, code, self.now()).ok_or(IdentityError::BadCode)?;
        }
        let disable = Update::new()
            .set("totpEnabled", false)
            .remove("totpSecret")
            .remove("totpPending");
        self.table
            .write(vec![
                WriteOp::update(keys::idp_credentials(&credentials.email), disable)
                    .when(Condition::Exists),
            ])
            .await
            .map_err(IdentityError::from)
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
