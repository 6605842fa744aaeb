//! Account use cases, the same on both faces: registration, verification, login with lockout,
//! sessions, MFA, password reset and platform roles. Credentials and tokens belong to the identity
//! provider; profiles (`profile.rs`) and the attempt limits (`lockout.rs`: passwords, second-factor
//! codes, mailed codes) live in the table.

use std::sync::Arc;

use amanar_core::table::{Table, TableError, WriteOp, items};
use amanar_core::{Clock, Key, keys};

use crate::audit::{Audit, AuditEvent};
use crate::identity::{IdentityError, IdentityProvider, NewIdentity, SignIn, TokenSet};
use crate::lockout::{self, Counted, Lockout};
use crate::policy::{self, AccountType};
use crate::profile::{Profile, ProfilePatch, Profiles};

/// Platform roles an admin can grant.
pub const ROLES: [&str; 2] = ["verifier", "admin"];

/// Why an account operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("too many failed attempts; retry in {retry_after_secs} seconds")]
    Locked { retry_after_secs: u64 },
    #[error("the resource changed meanwhile; read it again")]
    Conflict,
    #[error("conflict ({slug}): {detail}")]
    ConflictWith { slug: &'static str, detail: String },
    #[error("not found")]
    NotFound,
    #[error("forbidden ({slug}): {detail}")]
    Forbidden { slug: &'static str, detail: String },
    /// Kept whole, so the HTTP mapping can tell a transient failure (503) from a broken one (500).
    #[error("storage: {0}")]
    Storage(#[from] TableError),
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> AccountsError {
    AccountsError::Invalid {
        field,
        message: message.into(),
    }
}

/// What registration needs.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    pub account_type: String,
}

/// The accounts use cases over an identity provider and the table.
pub struct Accounts {
    pub idp: Arc<dyn IdentityProvider>,
    pub audit: Audit,
    profiles: Profiles,
    lockout: Lockout,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

fn session_hash(session: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(session.trim().as_bytes()))
}

/// A login waiting for its TOTP code, by the hash of its session.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MfaChallenge {
    email: String,
    user_id: String,
}

/// The subject of an access token the provider just issued (so no need to verify it again).
fn subject_of(access_token: &str) -> Option<String> {
    crate::identity::unverified_claim(access_token, "sub")
}

/// What TOTP setup audits when the password or the code is wrong.
const SETUP_FAILED: (&str, Option<&str>) = ("mfa.setup_failed", Some("mfa.setup_failed"));

fn mfa_already_enabled() -> AccountsError {
    AccountsError::ConflictWith {
        slug: "mfa-already-enabled",
        detail: "MFA is on; turn it off first (DELETE /v1/me/mfa with the password and a current code), then enrol again.".into(),
    }
}

/// A password given to prove who the caller is: present and of a sane length (the provider's
/// check then decides; an empty or huge one never reaches it).
fn password_field(password: &str) -> Result<(), AccountsError> {
    match password.chars().count() {
        1..=256 => Ok(()),
        _ => Err(invalid(
            "password",
            "the account's password (1 to 256 characters)",
        )),
    }
}

/// A code from the authenticator app: six digits.
fn code_field(code: &str) -> Result<(), AccountsError> {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid("code", "six digits from the authenticator app"))
    }
}

fn email_field(email: &str) -> Result<String, AccountsError> {
    policy::normalise_email(email).map_err(|m| invalid("email", m))
}

impl Accounts {
    pub fn new(
        idp: Arc<dyn IdentityProvider>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            audit: Audit::new(table.clone(), clock.clone()),
            profiles: Profiles::new(idp.clone(), table.clone(), clock.clone()),
            lockout: Lockout::new(table.clone(), clock.clone()),
            idp,
            table,
            clock,
        }
    }

    fn new_identity(&self, r: &Registration) -> Result<NewIdentity, AccountsError> {
        let email = email_field(&r.email)?;
        policy::check_password(&r.password).map_err(|m| invalid("password", m))?;
        let name = policy::check_name(&r.name).map_err(|m| invalid("name", m))?;
        let account_type = AccountType::parse(&r.account_type).ok_or_else(|| {
            invalid(
                "accountType",
                "must be one of: individual, business, enterprise, project_developer",
            )
        })?;
        Ok(NewIdentity {
            email,
            password: r.password.clone(),
            name,
            account_type: account_type.as_str().into(),
        })
    }

    /// Creates an unconfirmed account and its profile; a code goes to the email.
    pub async fn register(&self, registration: &Registration) -> Result<String, AccountsError> {
        let new = self.new_identity(registration)?;
        let user_id = self.idp.sign_up(&new).await?;
        self.profiles.create(&user_id, &new, false).await?;
        self.audit
            .record(
                &[&user_id],
                None,
                AuditEvent::new(&user_id, "user.registered").detail(new.account_type.clone()),
            )
            .await?;
        Ok(user_id)
    }

    pub async fn verify_email(&self, email: &str, code: &str) -> Result<(), AccountsError> {
        let email = email_field(email)?;
        self.checking_code(&email, self.idp.confirm_sign_up(&email, code))
            .await?;
        self.record_by_email(&email, "user.email_verified").await
    }

    /// Runs a mailed-code check within the email's cap ([`lockout::CODES`]): counted before,
    /// cleared by a right code.
    async fn checking_code(
        &self,
        email: &str,
        check: impl std::future::Future<Output = Result<(), IdentityError>>,
    ) -> Result<(), AccountsError> {
        let key = keys::code_failures(email);
        if self.lockout.count_attempt(&key, lockout::CODES).await? == Counted::NowLocked {
            self.record_by_email(email, "auth.codes_locked").await?;
        }
        check.await?;
        self.forget([key]).await
    }

    /// Forgets attempt counts (and their locks), after a right answer.
    async fn forget(&self, counts: impl IntoIterator<Item = Key>) -> Result<(), AccountsError> {
        let clear = counts.into_iter().map(Lockout::clear).collect();
        Ok(self.table.write(clear).await?)
    }

    /// Records an event the user did to their own account, in their log.
    async fn audit_user(&self, user_id: &str, action: &'static str) -> Result<(), AccountsError> {
        Ok(self
            .audit
            .record(&[user_id], None, AuditEvent::new(user_id, action))
            .await?)
    }

    /// Records an event in the log of the account with this email, if there is one.
    async fn record_by_email(
        &self,
        email: &str,
        action: &'static str,
    ) -> Result<(), AccountsError> {
        match self.idp.user_by_email(email).await {
            Ok(user) => Ok(self
                .audit
                .record(
                    &[&user.user_id],
                    None,
                    AuditEvent::new(&user.user_id, action),
                )
                .await?),
            Err(IdentityError::NoSuchUser) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn record_login(&self, tokens: &TokenSet) -> Result<(), AccountsError> {
        if let Some(user_id) = subject_of(&tokens.access_token) {
            self.audit_user(&user_id, "auth.login").await?;
        }
        Ok(())
    }

    pub async fn resend_code(&self, email: &str) -> Result<(), AccountsError> {
        let email = email_field(email)?;
        match self.idp.resend_code(&email).await {
            // A cooldown is not revealed: the answer is the same for every address.
            Ok(()) | Err(IdentityError::Cooldown { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Refuses a locked email, otherwise counts the password attempt
    /// ([`Lockout::count_attempt`]); the attempt that locks it goes into the account's audit log.
    async fn count_password_attempt(&self, email: &str) -> Result<(), AccountsError> {
        let key = keys::login_failures(email);
        if self.lockout.count_attempt(&key, lockout::LOGIN).await? == Counted::NowLocked {
            self.record_by_email(email, "auth.locked").await?;
        }
        Ok(())
    }

    /// The same for a second-factor answer, on the user's own count.
    async fn count_mfa_attempt(&self, user_id: &str) -> Result<(), AccountsError> {
        let key = keys::mfa_failures(user_id);
        if self.lockout.count_attempt(&key, lockout::MFA).await? == Counted::NowLocked {
            self.audit_user(user_id, "auth.mfa_locked").await?;
        }
        Ok(())
    }

    /// Checks the password and starts a session. Repeated failures lock the email for a while,
    /// whether or not an account has it.
    pub async fn login(&self, email: &str, password: &str) -> Result<SignIn, AccountsError> {
        let email = email_field(email)?;
        self.count_password_attempt(&email).await?;
        match self.idp.sign_in(&email, password).await {
            Ok(outcome) => {
                self.forget([keys::login_failures(&email)]).await?;
                self.after_sign_in(&email, &outcome).await?;
                Ok(outcome)
            }
            Err(IdentityError::BadCredentials) => {
                self.record_by_email(&email, "auth.login_failed").await?;
                Err(IdentityError::BadCredentials.into())
            }
            Err(other) => {
                if other == IdentityError::NotConfirmed {
                    // The password was right.
                    self.forget([keys::login_failures(&email)]).await?;
                }
                Err(other.into())
            }
        }
    }

    /// Audits a sign-in; a TOTP challenge is remembered with its email and user, so wrong codes
    /// count on that user's second-factor limit ([`lockout::MFA`]).
    async fn after_sign_in(&self, email: &str, outcome: &SignIn) -> Result<(), AccountsError> {
        match outcome {
            SignIn::Tokens(tokens) => self.record_login(tokens).await,
            SignIn::Totp { session } => {
                let user = self.idp.user_by_email(email).await?;
                let challenge = MfaChallenge {
                    email: email.to_owned(),
                    user_id: user.user_id.clone(),
                };
                let key = keys::mfa_challenge(&session_hash(session));
                let mut item = items::with_key(&key, &challenge)?;
                let expires = self.clock.now().timestamp() + 600;
                item.insert(amanar_core::table::EXPIRES_AT.into(), expires.into());
                self.table.write(vec![WriteOp::put(item)]).await?;
                self.audit_user(&user.user_id, "auth.mfa_challenged")
                    .await?;
                Ok(())
            }
        }
    }

    /// Completes a login that answered with a TOTP challenge. Wrong codes count on the user's own
    /// limit, which neither a right password nor a password reset clears: only a right code does
    /// (or the lock running out).
    pub async fn complete_mfa(&self, session: &str, code: &str) -> Result<TokenSet, AccountsError> {
        let challenge_key = keys::mfa_challenge(&session_hash(session));
        let challenge: Option<MfaChallenge> = match self.table.get(&challenge_key).await? {
            Some(item) => items::parse(item).ok(),
            None => None,
        };
        let Some(MfaChallenge { email, user_id }) = challenge else {
            return Err(IdentityError::BadMfaSession.into());
        };
        self.count_mfa_attempt(&user_id).await?;
        match self.idp.respond_totp(session, code).await {
            Ok(tokens) => {
                self.table
                    .write(vec![
                        Lockout::clear(keys::login_failures(&email)),
                        Lockout::clear(keys::mfa_failures(&user_id)),
                        WriteOp::delete(challenge_key),
                    ])
                    .await?;
                self.record_login(&tokens).await?;
                Ok(tokens)
            }
            Err(error) => {
                if error == IdentityError::BadCode {
                    self.audit_user(&user_id, "auth.mfa_failed").await?;
                }
                Err(error.into())
            }
        }
    }

    /// Starts TOTP enrolment: the secret and the `otpauth://` URI for the authenticator app.
    /// Needs the password (counted on the email's login limit), so a stolen access token cannot
    /// put its own second factor on an account.
    pub async fn mfa_enrol(
        &self,
        user_id: &str,
        password: &str,
    ) -> Result<(String, String), AccountsError> {
        password_field(password)?;
        // The provider's state decides, not the profile's copy of it: if a change half-landed
        // (the provider on, the profile not yet), enrolling again must still be refused.
        let user = self.idp.user(user_id).await?;
        if user.mfa_enabled {
            // Replacing an active secret would let a stolen access token take over the second
            // factor: turn MFA off first, which needs a current code.
            return Err(mfa_already_enabled());
        }
        let secret = self
            .with_password(
                user_id,
                &user.email,
                SETUP_FAILED,
                self.idp.totp_enrol(user_id, password),
            )
            .await?;
        self.audit_user(user_id, "mfa.enrolment_started").await?;
        let uri = crate::totp::otpauth_uri("AmanarCarbon", &user.email, &secret);
        Ok((secret, uri))
    }

    /// Confirms enrolment with a code from the app and the password again (Cognito's check of
    /// the code needs a sign-in, see [`IdentityProvider::totp_enrol`]).
    pub async fn mfa_confirm(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<Profile, AccountsError> {
        password_field(password)?;
        code_field(code)?;
        let user = self.idp.user(user_id).await?;
        if user.mfa_enabled {
            // On at the provider. If the profile still says off, an earlier call turned it on
            // there and failed before the rest: finish that now, so the retry repairs it.
            if !self.profile(user_id).await?.mfa_enabled {
                return self.after_mfa_enabled(user_id).await;
            }
            return Err(mfa_already_enabled());
        }
        self.with_password(
            user_id,
            &user.email,
            SETUP_FAILED,
            self.idp.totp_confirm(user_id, password, code),
        )
        .await?;
        self.after_mfa_enabled(user_id).await
    }

    /// What follows turning MFA on at the provider: audited, the profile in step, and every
    /// session from before the second factor ended (the access tokens expire within 15 minutes),
    /// so the next login asks for a code.
    async fn after_mfa_enabled(&self, user_id: &str) -> Result<Profile, AccountsError> {
        self.audit_user(user_id, "mfa.enabled").await?;
        let profile = self.profiles.set_mfa(user_id, true).await?;
        self.idp.sign_out(user_id).await?;
        Ok(profile)
    }

    /// Runs a provider call that checks the password before anything else, counted on the
    /// email's login limit (a locked email gets 423 before the call). A wrong password is audited
    /// as `failed.0`; a wrong code after a right password as `failed.1` (when there is one); any
    /// answer past the password (success, a wrong code, no enrolment) clears the email's count,
    /// as a right password at login does.
    async fn with_password<T>(
        &self,
        user_id: &str,
        email: &str,
        failed: (&'static str, Option<&'static str>),
        call: impl std::future::Future<Output = Result<T, IdentityError>>,
    ) -> Result<T, AccountsError> {
        self.count_password_attempt(email).await?;
        match call.await {
            Err(IdentityError::BadCredentials) => {
                self.audit_user(user_id, failed.0).await?;
                Err(IdentityError::BadCredentials.into())
            }
            Err(error @ (IdentityError::BadCode | IdentityError::NoTotpEnrolment)) => {
                self.forget([keys::login_failures(email)]).await?;
                if let (IdentityError::BadCode, Some(action)) = (&error, failed.1) {
                    self.audit_user(user_id, action).await?;
                }
                Err(error.into())
            }
            Err(error) => Err(error.into()),
            Ok(value) => {
                self.forget([keys::login_failures(email)]).await?;
                Ok(value)
            }
        }
    }

    /// Turns MFA off with proof of both factors: the password and a current code, neither of
    /// which a stolen access token carries. The password counts on the email's login limit and
    /// the code on the user's second-factor limit, so this is no side door for guessing either.
    pub async fn mfa_disable(
        &self,
        user_id: &str,
        password: &str,
        code: &str,
    ) -> Result<Profile, AccountsError> {
        password_field(password)?;
        code_field(code)?;
        let user = self.idp.user(user_id).await?;
        if !user.mfa_enabled {
            // Off at the provider. If the profile still says on, an earlier call turned it off
            // there and failed before the rest: finish that now, so the retry repairs it.
            if self.profile(user_id).await?.mfa_enabled {
                return self.after_mfa_disabled(user_id).await;
            }
            return Err(AccountsError::ConflictWith {
                slug: "mfa-not-enabled",
                detail: "MFA is not on for this account.".into(),
            });
        }
        self.count_mfa_attempt(user_id).await?;
        self.with_password(
            user_id,
            &user.email,
            ("auth.login_failed", Some("mfa.disable_failed")),
            self.idp.totp_disable(user_id, password, code),
        )
        .await?;
        self.after_mfa_disabled(user_id).await
    }

    /// What follows turning MFA off at the provider: the second-factor count cleared, audited,
    /// the profile in step, and every session ended.
    async fn after_mfa_disabled(&self, user_id: &str) -> Result<Profile, AccountsError> {
        self.forget([keys::mfa_failures(user_id)]).await?;
        self.audit_user(user_id, "mfa.disabled").await?;
        let profile = self.profiles.set_mfa(user_id, false).await?;
        self.idp.sign_out(user_id).await?;
        Ok(profile)
    }

    /// A session for a user a social provider vouched for (see
    /// [`IdentityProvider::federated_session`]); a new account gets its profile here.
    pub async fn federated_login(
        &self,
        provider: &str,
        subject: &str,
        email: &str,
        name: &str,
    ) -> Result<SignIn, AccountsError> {
        let email = email_field(email)?;
        let (user_id, outcome, created) = self
            .idp
            .federated_session(provider, subject, &email, name)
            .await?;
        if created {
            let new = NewIdentity {
                email: email.clone(),
                password: String::new(),
                name: policy::check_name(name).unwrap_or_else(|_| "New user".into()),
                account_type: AccountType::Individual.as_str().into(),
            };
            self.profiles.create(&user_id, &new, false).await?;
        }
        self.audit
            .record(
                &[&user_id],
                None,
                AuditEvent::new(
                    &user_id,
                    if created {
                        "user.registered_social"
                    } else {
                        "auth.social_login"
                    },
                )
                .detail(provider.to_owned()),
            )
            .await?;
        self.after_sign_in(&email, &outcome).await?;
        Ok(outcome)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, AccountsError> {
        Ok(self.idp.refresh(refresh_token).await?)
    }

    pub async fn logout(&self, user_id: &str) -> Result<(), AccountsError> {
        self.idp.sign_out(user_id).await?;
        Ok(self
            .audit
            .record(&[user_id], None, AuditEvent::new(user_id, "auth.logout"))
            .await?)
    }

    pub async fn forgot_password(&self, email: &str) -> Result<(), AccountsError> {
        let email = email_field(email)?;
        match self.idp.forgot_password(&email).await {
            // A cooldown is not revealed either: the answer is the same for every address.
            Ok(()) | Err(IdentityError::Cooldown { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn reset_password(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), AccountsError> {
        let email = email_field(email)?;
        policy::check_password(new_password).map_err(|m| invalid("newPassword", m))?;
        self.checking_code(
            &email,
            self.idp.confirm_forgot_password(&email, code, new_password),
        )
        .await?;
        // A reset lifts the password lock: the mailbox owner proved who they are. Not the
        // second-factor lock, which exists for exactly the case where someone else holds the
        // mailbox: it runs out on its own.
        self.forget([keys::login_failures(&email)]).await?;
        self.record_by_email(&email, "auth.password_reset").await
    }

    /// The caller's profile, rebuilt from the identity provider if it was never written.
    pub async fn profile(&self, user_id: &str) -> Result<Profile, AccountsError> {
        self.profiles.get(user_id).await
    }

    /// Applies a patch with optimistic concurrency.
    pub async fn update_profile(
        &self,
        user_id: &str,
        patch: ProfilePatch,
    ) -> Result<Profile, AccountsError> {
        self.profiles.update(user_id, patch).await
    }

    /// Replaces a user's platform roles (admins only; the caller checks).
    pub async fn set_roles(
        &self,
        admin_id: &str,
        user_id: &str,
        roles: &[String],
    ) -> Result<Vec<String>, AccountsError> {
        let mut roles: Vec<String> = roles.to_vec();
        roles.sort();
        roles.dedup();
        if let Some(bad) = roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
            return Err(invalid(
                "roles",
                format!("{bad:?} is not a role; roles are: {}", ROLES.join(", ")),
            ));
        }
        self.idp.set_groups(user_id, &roles).await?;
        self.audit
            .record(
                &[admin_id, user_id],
                None,
                AuditEvent::new(admin_id, "roles.changed")
                    .target(user_id)
                    .detail(roles.join(",")),
            )
            .await?;
        Ok(roles)
    }

    /// Makes sure the configured first admin exists, is confirmed and has the admin role. Runs at
    /// start of the local runtime; idempotent.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<String, AccountsError> {
        let registration = Registration {
            email: email.to_owned(),
            password: password.to_owned(),
            name: "Administrator".into(),
            account_type: AccountType::Enterprise.as_str().into(),
        };
        let new = self.new_identity(&registration)?;
        let user_id = match self.idp.create_confirmed(&new).await {
            Ok(id) => id,
            Err(IdentityError::EmailTaken) => {
                // Someone may have registered this address first: it becomes the admin only if
                // it holds the configured password and is confirmed.
                match self.idp.sign_in(&new.email, password).await {
                    Ok(_) => self.idp.user_by_email(&new.email).await?.user_id,
                    Err(IdentityError::BadCredentials | IdentityError::NotConfirmed) => {
                        return Err(AccountsError::Invalid {
                            field: "AMANAR_ADMIN_EMAIL",
                            message: "belongs to an account with another password, or an unconfirmed one; it does not become admin".into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let user = self.idp.user(&user_id).await?;
        if !user.groups.iter().any(|g| g == "admin") {
            let mut groups = user.groups.clone();
            groups.push("admin".into());
            self.idp.set_groups(&user_id, &groups).await?;
        }
        self.profiles.create(&user_id, &new, false).await?;
        Ok(user_id)
    }
}
