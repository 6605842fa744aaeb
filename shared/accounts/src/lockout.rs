//! The failed-login lockout: attempts per email are counted in the table (`LOGIN#<email>`), because
//! Lambda instances share nothing; too many within a window lock the email for a while, whether or
//! not an account has it.

use std::sync::Arc;

use amanar_core::table::{Table, Update, WriteOp, items};
use amanar_core::{Clock, keys};
use serde::{Deserialize, Serialize};

use crate::service::AccountsError;

/// Failed logins within [`LOCKOUT_WINDOW_SECS`] that lock an email.
pub const LOCKOUT_FAILURES: i64 = 5;
pub const LOCKOUT_WINDOW_SECS: i64 = 15 * 60;
/// How long a lock lasts.
pub const LOCKOUT_SECS: i64 = 15 * 60;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginFailures {
    #[serde(default)]
    failures: i64,
    #[serde(default)]
    window_start: i64,
    #[serde(default)]
    locked_until: i64,
}

/// What counting an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The attempt was counted and the email is still open.
    UnderLimit,
    /// This attempt reached the limit: the email is locked from now on (this attempt still goes
    /// ahead, and a right secret clears the lock with the count).
    NowLocked,
}

/// Failed-login counters in the table.
#[derive(Clone)]
pub struct Lockout {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Lockout {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    async fn failures(&self, email: &str) -> Result<LoginFailures, AccountsError> {
        Ok(match self.table.get(&keys::login_failures(email)).await? {
            Some(item) => items::parse(item)?,
            None => LoginFailures::default(),
        })
    }

    async fn record_failure(
        &self,
        email: &str,
        mut seen: LoginFailures,
    ) -> Result<Counted, AccountsError> {
        let key = keys::login_failures(email);
        let now = self.clock.now().timestamp();
        if now - seen.window_start >= LOCKOUT_WINDOW_SECS {
            seen = LoginFailures {
                failures: 1,
                window_start: now,
                locked_until: 0,
            };
            let mut item = items::with_key(&key, &seen)?;
            item.insert(
                amanar_core::table::EXPIRES_AT.into(),
                (now + LOCKOUT_WINDOW_SECS + LOCKOUT_SECS).into(),
            );
            self.table.write(vec![WriteOp::put(item)]).await?;
            return Ok(Counted::UnderLimit);
        }
        self.table
            .write(vec![WriteOp::update(
                key.clone(),
                Update::new().add("failures", 1),
            )])
            .await?;
        let now_failures = self.failures(email).await?;
        if now_failures.failures >= LOCKOUT_FAILURES && now_failures.locked_until <= now {
            let lock = Update::new().set("lockedUntil", now + LOCKOUT_SECS).set(
                amanar_core::table::EXPIRES_AT,
                now + LOCKOUT_SECS + LOCKOUT_WINDOW_SECS,
            );
            self.table.write(vec![WriteOp::update(key, lock)]).await?;
            tracing::warn!("login locked after repeated failures");
            return Ok(Counted::NowLocked);
        }
        Ok(Counted::UnderLimit)
    }

    /// Refuses a locked email; otherwise counts this attempt before the secret (password or TOTP
    /// code) is checked, so parallel guesses cannot all slip in under the limit. A right answer
    /// clears the count again ([`Self::clear`]).
    pub async fn count_attempt(&self, email: &str) -> Result<Counted, AccountsError> {
        let failures = self.failures(email).await?;
        let now = self.clock.now().timestamp();
        if failures.locked_until > now {
            return Err(AccountsError::Locked {
                retry_after_secs: (failures.locked_until - now) as u64,
            });
        }
        self.record_failure(email, failures).await
    }

    /// The write that forgets an email's count (and its lock), to go with a right answer.
    pub fn clear(email: &str) -> WriteOp {
        WriteOp::delete(keys::login_failures(email))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::Accounts;
    use crate::testing::{self, PASSWORD, Provider, store};

    const EMAIL: &str = "ada@example.com";

    fn locked_for(result: Result<Counted, AccountsError>) -> u64 {
        match result {
            Err(AccountsError::Locked { retry_after_secs }) => retry_after_secs,
            other => panic!("expected a lock, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_fifth_failure_within_the_window_locks_the_email_for_fifteen_minutes() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 1..LOCKOUT_FAILURES {
            assert_eq!(
                lockout.count_attempt(EMAIL).await.unwrap(),
                Counted::UnderLimit
            );
            store.clock.advance(Duration::seconds(30));
        }
        assert_eq!(
            lockout.count_attempt(EMAIL).await.unwrap(),
            Counted::NowLocked
        );
        assert_eq!(
            locked_for(lockout.count_attempt(EMAIL).await),
            LOCKOUT_SECS as u64
        );
        store.clock.advance(Duration::minutes(10));
        assert_eq!(locked_for(lockout.count_attempt(EMAIL).await), 5 * 60);
    }

    #[tokio::test]
    async fn the_lock_lifts_when_its_time_is_up_and_counting_starts_again() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..LOCKOUT_FAILURES {
            lockout.count_attempt(EMAIL).await.unwrap();
        }
        store.clock.advance(Duration::seconds(LOCKOUT_SECS - 1));
        assert_eq!(locked_for(lockout.count_attempt(EMAIL).await), 1);
        store.clock.advance(Duration::seconds(1));
        for _ in 1..LOCKOUT_FAILURES {
            assert_eq!(
                lockout.count_attempt(EMAIL).await.unwrap(),
                Counted::UnderLimit
            );
        }
        assert_eq!(
            lockout.count_attempt(EMAIL).await.unwrap(),
            Counted::NowLocked
        );
    }

    #[tokio::test]
    async fn failures_further_apart_than_the_window_never_lock() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..3 * LOCKOUT_FAILURES {
            assert_eq!(
                lockout.count_attempt(EMAIL).await.unwrap(),
                Counted::UnderLimit
            );
            store
                .clock
                .advance(Duration::seconds(LOCKOUT_WINDOW_SECS / 4 + 1));
        }
    }

    #[tokio::test]
    async fn clearing_the_count_forgets_the_failures_before_it() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 1..LOCKOUT_FAILURES {
            lockout.count_attempt(EMAIL).await.unwrap();
        }
        store
            .table
            .write(vec![Lockout::clear(EMAIL)])
            .await
            .unwrap();
        for _ in 1..LOCKOUT_FAILURES {
            assert_eq!(
                lockout.count_attempt(EMAIL).await.unwrap(),
                Counted::UnderLimit
            );
        }
    }

    #[tokio::test]
    async fn emails_are_counted_apart() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..LOCKOUT_FAILURES {
            lockout.count_attempt(EMAIL).await.unwrap();
        }
        assert_eq!(
            lockout.count_attempt("grace@example.com").await.unwrap(),
            Counted::UnderLimit
        );
    }

    fn accounts(store: &testing::Store) -> Accounts {
        let ada = testing::user("ada", "business", false);
        Accounts::new(
            Provider::with([ada]),
            store.table.clone(),
            store.clock.clone(),
        )
    }

    #[tokio::test]
    async fn a_right_password_clears_the_failed_logins_before_it() {
        let store = store();
        let accounts = accounts(&store);
        for _ in 1..LOCKOUT_FAILURES {
            accounts.login(EMAIL, "wrong").await.unwrap_err();
        }
        accounts.login(EMAIL, PASSWORD).await.unwrap();
        for _ in 1..LOCKOUT_FAILURES {
            let refused = accounts.login(EMAIL, "wrong").await.unwrap_err();
            assert!(matches!(refused, AccountsError::Identity(_)), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn a_locked_login_is_refused_even_with_the_right_password_and_audited_once() {
        let store = store();
        let accounts = accounts(&store);
        for _ in 0..LOCKOUT_FAILURES {
            accounts.login(EMAIL, "wrong").await.unwrap_err();
        }
        store.clock.advance(Duration::minutes(1));
        let refused = accounts.login(EMAIL, PASSWORD).await.unwrap_err();
        assert_eq!(
            refused,
            AccountsError::Locked {
                retry_after_secs: (LOCKOUT_SECS - 60) as u64
            }
        );
        let (log, _) = accounts
            .audit
            .list(&keys::audit_stream_user("ada"), 50, None)
            .await
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions.iter().filter(|a| **a == "auth.locked").count(), 1);
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "auth.login_failed")
                .count(),
            LOCKOUT_FAILURES as usize
        );
    }
}
