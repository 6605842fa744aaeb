//! Mailed codes of the local provider (email confirmation and password reset): six digits, stored
//! as an HMAC under the provider's code key, single use, expiring, void after a few wrong guesses,
//! and sent at most once a minute. Wrong guesses per email per day are capped by the accounts
//! service on both faces (`amanar_accounts::lockout::CODES`).

use amanar_accounts::identity::IdentityError;
use amanar_core::keys;
use amanar_core::table::{Condition, TableError, Update, WriteOp, items};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::provider::LocalIdentity;
use crate::secrets::{hmac_hex, six_digits};

/// Lifetime of an email-confirmation code (Cognito: 24 hours).
pub const CONFIRM_CODE_SECS: i64 = 24 * 3600;
/// Lifetime of a password-reset code (Cognito: 1 hour).
pub const RESET_CODE_SECS: i64 = 3600;
/// Wrong guesses after which a code is void.
pub const CODE_ATTEMPTS: i64 = 5;
/// Minimum time between two codes sent to one address.
pub const RESEND_COOLDOWN_SECS: i64 = 60;

pub(crate) const CONFIRM: &str = "confirm";
pub(crate) const RESET: &str = "reset";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Code {
    hash: String,
    expires_at: i64,
    sent_at: i64,
    #[serde(default)]
    attempts: i64,
}

impl LocalIdentity {
    /// Makes a code for `purpose`, stores its hash and mails it, unless one went out less than a
    /// minute ago.
    pub(crate) async fn send_code(&self, email: &str, purpose: &str) -> Result<(), IdentityError> {
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
            hash: hmac_hex(&self.code_key, &[email, purpose, &code]),
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
    pub(crate) async fn spend_attempt(
        &self,
        key: &amanar_core::Key,
        seen: i64,
    ) -> Result<(), IdentityError> {
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
    pub(crate) async fn check_code(
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
        let given = hmac_hex(&self.code_key, &[email, purpose, code.trim()]);
        if !bool::from(given.as_bytes().ct_eq(stored.hash.as_bytes())) {
            return Err(IdentityError::BadCode);
        }
        // Consumed exactly once: the delete only applies while the code is the one checked.
        Ok(WriteOp::delete(key).when(Condition::Equals("hash".into(), stored.hash.into())))
    }
}
