//! Attempt limits ([`LOGIN`], [`MFA`], [`CODES`]): wrong passwords per email
//! (`LOGIN#<email>/FAILURES`), wrong second-factor codes per user (`USER#<id>/MFA_FAILURES`) and
//! wrong mailed codes per email (`LOGIN#<email>/CODE_FAILURES`), counted in the table because
//! Lambda instances share nothing.
//! Too many within a window lock the subject for a while, whether or not an account has it.
//!
//! Counting is one conditional update, so parallel guesses cannot all slip in under the limit:
//! the item holds the attempts the window still allows (`remaining`) and when the window ends.
//! An attempt decrements `remaining` only while it is at least 2 and the window is open; the one
//! that takes the last slot (`remaining` exactly 1) also sets `lockedUntil`. Only when neither applies is the item read,
//! to answer "locked" or to open a fresh window in place of an expired one (a conditional put, so
//! two attempts cannot both open one and lose each other's count).

use std::sync::Arc;

use amanar_core::table::{Condition, EXPIRES_AT, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, Key};
use serde::{Deserialize, Serialize};

use crate::service::AccountsError;

/// How many failures within how long lock a subject, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub failures: i64,
    pub window_secs: i64,
    pub lock_secs: i64,
}

/// Wrong passwords per email.
pub const LOGIN: Limit = Limit {
    failures: 5,
    window_secs: 15 * 60,
    lock_secs: 15 * 60,
};

/// Wrong TOTP codes per user, at login and when turning MFA off. Their own count: a right password
/// does not clear it and neither does a password reset (whoever holds the mailbox could otherwise
/// reset, guess five, and reset again); only a right code does, or the lock running out. Five
/// guesses, then an hour's lock: at most about 96 guesses a day, each hitting one of the three codes
/// a window accepts with odds of 3 in a million, so an attacker who has the password has about one
/// chance in 3,500 a day.
pub const MFA: Limit = Limit {
    failures: 5,
    window_secs: 15 * 60,
    lock_secs: 60 * 60,
};

/// Wrong mailed codes (email verification, password reset) per email and hour. A code is void
/// after 5 wrong guesses, but a new one can be sent every minute: without this cap that was about
/// 7,200 guesses a day at one address, now at most 240. The lock is an hour, not a day, because
/// anyone can trip it for someone else's address and so hold back that owner's reset. A right code
/// clears the count.
pub const CODES: Limit = Limit {
    failures: 10,
    window_secs: 3600,
    lock_secs: 3600,
};

const REMAINING: &str = "remaining";
const WINDOW_END: &str = "windowEnd";
const LOCKED_UNTIL: &str = "lockedUntil";
/// Rounds of "the item changed between the update and the read" before answering 503.
const RACE_ROUNDS: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    #[serde(default)]
    remaining: i64,
    #[serde(default)]
    window_end: i64,
    #[serde(default)]
    locked_until: i64,
}

/// What counting an attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The attempt was counted and the subject is still open.
    UnderLimit,
    /// This attempt took the last slot: the subject is locked from now on (this attempt still goes
    /// ahead, and a right answer clears the lock with the count).
    NowLocked,
}

/// Attempt counters in the table.
#[derive(Clone)]
pub struct Lockout {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Lockout {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    /// Applies one conditional write: `Ok(false)` when its condition did not hold.
    async fn applied(&self, op: WriteOp) -> Result<bool, AccountsError> {
        match self.table.write(vec![op]).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Refuses a locked subject; otherwise counts this attempt before the secret (password or
    /// code) is checked. A right answer clears the count again ([`Self::clear`]).
    pub async fn count_attempt(&self, key: &Key, limit: Limit) -> Result<Counted, AccountsError> {
        debug_assert!(limit.failures >= 2 && limit.lock_secs > 0);
        for _ in 0..RACE_ROUNDS {
            let now = self.clock.now().timestamp();
            let open = Condition::AtLeast(WINDOW_END.into(), now + 1);
            let count = WriteOp::update(key.clone(), Update::new().add(REMAINING, -1))
                .when(Condition::AtLeast(REMAINING.into(), 2))
                .when(open.clone());
            if self.applied(count).await? {
                return Ok(Counted::UnderLimit);
            }
            let lock_until = now + limit.lock_secs;
            let last = Update::new()
                .add(REMAINING, -1)
                .set(LOCKED_UNTIL, lock_until)
                .set(EXPIRES_AT, lock_until.max(now + limit.window_secs));
            // Exactly the last slot: `remaining` may have been refilled since the first update
            // failed (a fresh window), and then this attempt is an ordinary one.
            let last = WriteOp::update(key.clone(), last)
                .when(Condition::Equals(REMAINING.into(), 1.into()))
                .when(open);
            if self.applied(last).await? {
                // The key holds an email: the log names only which limit it was.
                tracing::warn!(limit = %key.sk, "locked after repeated failures");
                return Ok(Counted::NowLocked);
            }
            let seen: Option<Window> = match self.table.get(key).await? {
                // A count written before windows had an end (`failures`, `windowStart`): it is
                // replaced like an expired one, once it is gone.
                Some(item) if !item.contains_key(WINDOW_END) => {
                    self.table.write(vec![WriteOp::delete(key.clone())]).await?;
                    continue;
                }
                Some(item) => Some(items::parse(item)?),
                None => None,
            };
            // The clock again, after the read: the lock may have been set by an attempt whose
            // second came after this round's first reading. `Retry-After` never exceeds the lock,
            // even when another instance's clock runs ahead of this one.
            let now = self.clock.now().timestamp();
            let replace = match &seen {
                Some(w) if w.locked_until > now => {
                    return Err(AccountsError::Locked {
                        retry_after_secs: (w.locked_until - now).min(limit.lock_secs) as u64,
                    });
                }
                None => Condition::NotExists,
                // Expired, or used up by a lock that ended early: a fresh window replaces it.
                Some(w) if w.window_end <= now || w.remaining <= 0 => {
                    Condition::Equals(WINDOW_END.into(), w.window_end.into())
                }
                // Another attempt opened a window meanwhile: count in it.
                Some(_) => continue,
            };
            let fresh = Window {
                remaining: limit.failures - 1,
                window_end: now + limit.window_secs,
                locked_until: 0,
            };
            let mut item = items::with_key(key, &fresh)?;
            item.insert(EXPIRES_AT.into(), fresh.window_end.into());
            if self.applied(WriteOp::put(item).when(replace)).await? {
                return Ok(Counted::UnderLimit);
            }
        }
        Err(TableError::TransactionConflict.into())
    }

    /// The write that forgets a count (and its lock), to go with a right answer.
    pub fn clear(key: Key) -> WriteOp {
        WriteOp::delete(key)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::Accounts;
    use crate::testing::{self, PASSWORD, Provider, store};
    use amanar_core::keys;

    const EMAIL: &str = "ada@example.com";

    fn login(email: &str) -> Key {
        keys::login_failures(email)
    }

    fn locked_for(result: Result<Counted, AccountsError>) -> u64 {
        match result {
            Err(AccountsError::Locked { retry_after_secs }) => retry_after_secs,
            other => panic!("expected a lock, got {other:?}"),
        }
    }

    /// Four attempts under the limit, then the fifth locks.
    async fn fail_until_locked(lockout: &Lockout, key: &Key) {
        for _ in 1..LOGIN.failures {
            assert_eq!(
                lockout.count_attempt(key, LOGIN).await.unwrap(),
                Counted::UnderLimit
            );
        }
        assert_eq!(
            lockout.count_attempt(key, LOGIN).await.unwrap(),
            Counted::NowLocked
        );
    }

    /// A clock a second later at each reading, as under load across a second's boundary.
    struct Ticking(std::sync::atomic::AtomicI64);

    impl amanar_core::clock::Clock for Ticking {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            let tick = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            chrono::DateTime::from_timestamp(1_800_000_000 + tick, 0).unwrap()
        }
    }

    #[tokio::test]
    async fn retry_after_never_exceeds_the_lock_however_the_clock_moves_between_readings() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), Arc::new(Ticking(0.into())));
        fail_until_locked(&lockout, &login(EMAIL)).await;
        let waited = locked_for(lockout.count_attempt(&login(EMAIL), LOGIN).await);
        assert!((1..=LOGIN.lock_secs as u64).contains(&waited), "{waited}");

        // A lock written by an instance whose clock runs an hour ahead of this one.
        let ahead = Lockout::new(store.table.clone(), store.clock.clone());
        let other = login("grace@example.com");
        store.clock.advance(Duration::hours(1));
        fail_until_locked(&ahead, &other).await;
        store.clock.advance(Duration::hours(-1));
        assert_eq!(
            locked_for(ahead.count_attempt(&other, LOGIN).await),
            LOGIN.lock_secs as u64
        );
    }

    #[tokio::test]
    async fn the_fifth_failure_within_the_window_locks_the_email_for_fifteen_minutes() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 1..LOGIN.failures {
            assert_eq!(
                lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap(),
                Counted::UnderLimit
            );
            store.clock.advance(Duration::seconds(30));
        }
        assert_eq!(
            lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap(),
            Counted::NowLocked
        );
        assert_eq!(
            locked_for(lockout.count_attempt(&login(EMAIL), LOGIN).await),
            LOGIN.lock_secs as u64
        );
        store.clock.advance(Duration::minutes(10));
        assert_eq!(
            locked_for(lockout.count_attempt(&login(EMAIL), LOGIN).await),
            5 * 60
        );
    }

    #[tokio::test]
    async fn the_lock_lifts_when_its_time_is_up_and_counting_starts_again() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..LOGIN.failures {
            lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap();
        }
        store.clock.advance(Duration::seconds(LOGIN.lock_secs - 1));
        assert_eq!(
            locked_for(lockout.count_attempt(&login(EMAIL), LOGIN).await),
            1
        );
        store.clock.advance(Duration::seconds(1));
        fail_until_locked(&lockout, &login(EMAIL)).await;
    }

    #[tokio::test]
    async fn failures_further_apart_than_the_window_never_lock() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..3 * LOGIN.failures {
            assert_eq!(
                lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap(),
                Counted::UnderLimit
            );
            store
                .clock
                .advance(Duration::seconds(LOGIN.window_secs / 4 + 1));
        }
    }

    #[tokio::test]
    async fn clearing_the_count_forgets_the_failures_before_it() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 1..LOGIN.failures {
            lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap();
        }
        store
            .table
            .write(vec![Lockout::clear(login(EMAIL))])
            .await
            .unwrap();
        for _ in 1..LOGIN.failures {
            assert_eq!(
                lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap(),
                Counted::UnderLimit
            );
        }
    }

    #[tokio::test]
    async fn a_count_written_by_the_read_then_write_version_is_replaced_not_a_503() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        let now = store.clock.now().timestamp();
        let legacy = serde_json::json!({"failures": 3, "windowStart": now, "lockedUntil": 0});
        let item = items::with_key(&login(EMAIL), &legacy).unwrap();
        store.table.write(vec![WriteOp::put(item)]).await.unwrap();
        fail_until_locked(&lockout, &login(EMAIL)).await;
    }

    #[tokio::test]
    async fn the_second_factor_lock_lasts_an_hour_and_then_lifts() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        let key = keys::mfa_failures("usr_1");
        for _ in 0..MFA.failures {
            lockout.count_attempt(&key, MFA).await.unwrap();
        }
        assert_eq!(locked_for(lockout.count_attempt(&key, MFA).await), 3600);
        store.clock.advance(Duration::minutes(59));
        assert_eq!(locked_for(lockout.count_attempt(&key, MFA).await), 60);
        store.clock.advance(Duration::minutes(1));
        assert_eq!(
            lockout.count_attempt(&key, MFA).await.unwrap(),
            Counted::UnderLimit
        );
    }

    #[tokio::test]
    async fn emails_are_counted_apart() {
        let store = store();
        let lockout = Lockout::new(store.table.clone(), store.clock.clone());
        for _ in 0..LOGIN.failures {
            lockout.count_attempt(&login(EMAIL), LOGIN).await.unwrap();
        }
        assert_eq!(
            lockout
                .count_attempt(&login("grace@example.com"), LOGIN)
                .await
                .unwrap(),
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
        for _ in 1..LOGIN.failures {
            accounts.login(EMAIL, "wrong").await.unwrap_err();
        }
        accounts.login(EMAIL, PASSWORD).await.unwrap();
        for _ in 1..LOGIN.failures {
            let refused = accounts.login(EMAIL, "wrong").await.unwrap_err();
            assert!(matches!(refused, AccountsError::Identity(_)), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn a_locked_login_is_refused_even_with_the_right_password_and_audited_once() {
        let store = store();
        let accounts = accounts(&store);
        for _ in 0..LOGIN.failures {
            accounts.login(EMAIL, "wrong").await.unwrap_err();
        }
        store.clock.advance(Duration::minutes(1));
        let refused = accounts.login(EMAIL, PASSWORD).await.unwrap_err();
        assert_eq!(
            refused,
            AccountsError::Locked {
                retry_after_secs: (LOGIN.lock_secs - 60) as u64
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
            LOGIN.failures as usize
        );
    }
}
