//! Conformance suite of the identity-provider port: the same cases against the local provider and
//! against Cognito on moto.
//!
//! moto does not check sign-up confirmation codes and accepts any reset code that is not one of
//! its own, so a fixture says whether its provider checks codes; the wrong-code cases run only where
//! they can fail. Everything else runs on both faces.

use std::sync::Arc;

use amanar_accounts::identity::{IdentityError, IdentityProvider, NewIdentity, SignIn};
use amanar_accounts::totp;
use amanar_http::Verifier;
use async_trait::async_trait;

/// A provider under test, and how the test reads the codes it mails.
pub struct Fixture {
    pub idp: Arc<dyn IdentityProvider>,
    pub codes: Box<dyn Codes>,
}

#[async_trait]
pub trait Codes: Send + Sync {
    /// The newest code mailed to `email` whose subject contains `subject` (`Verify`, `Reset`).
    async fn code(&self, email: &str, subject: &str) -> String;
    /// Whether the provider refuses wrong codes (moto does not).
    fn checks_codes(&self) -> bool;
    /// Whether a TOTP code works only once (real Cognito and the local provider; not moto).
    fn totp_codes_work_once(&self) -> bool;
    /// Whether a password sign-in refuses an unconfirmed account. Real Cognito's
    /// `AdminInitiateAuth` answers `UserNotConfirmedException`, as the local provider does; moto's
    /// admin flow skips the check (its user-side flow has it, but the app client no longer
    /// allows that flow).
    fn sign_in_checks_confirmation(&self) -> bool {
        true
    }
}

pub const PASSWORD: &str = "Correct horse 7 battery";

/// A code for the first step after `last_used` (a code works once, and so do the codes before it),
/// waiting for the clock to bring that step into the drift window: at most one step, 30 seconds.
pub async fn code_after(key: &[u8], last_used: i64) -> String {
    loop {
        let now = totp::step_of(crate::unix_now());
        let step = now.max(last_used + 1);
        if step <= now + totp::DRIFT_STEPS {
            return totp::code_at_step(key, step);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The current TOTP step, once at least 5 s of it remain. moto checks a code against the current
/// step alone, with no drift window, so a code must not cross a step boundary on its way there.
pub async fn settled_step() -> i64 {
    const MARGIN_MS: u128 = 5_000;
    let step_ms = totp::STEP_SECS as u128 * 1000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis();
    let left_ms = step_ms - now_ms % step_ms;
    if left_ms < MARGIN_MS {
        tokio::time::sleep(std::time::Duration::from_millis(left_ms as u64 + 100)).await;
    }
    totp::step_of(crate::unix_now())
}

fn new_identity(email: &str) -> NewIdentity {
    NewIdentity {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        name: "Ada Lovelace".to_owned(),
        account_type: "business".to_owned(),
    }
}

fn email(ns: &str, who: &str) -> String {
    format!("{who}-{}@example.com", ns.to_lowercase())
}

async fn verifier(idp: &Arc<dyn IdentityProvider>) -> Verifier {
    let issuer = idp.issuer();
    let jwks = idp.jwks().await.expect("the provider publishes its keys");
    Verifier::from_jwks(issuer.issuer, issuer.client_id, &jwks).expect("usable keys")
}

async fn confirmed(f: &Fixture, email: &str) -> String {
    let id = f.idp.sign_up(&new_identity(email)).await.unwrap();
    let code = f.codes.code(email, "Verify").await;
    f.idp.confirm_sign_up(email, &code).await.unwrap();
    id
}

pub async fn sign_up_confirm_and_sign_in_give_a_verifiable_access_token(f: Fixture, ns: &str) {
    let email = email(ns, "ada");
    let id = f.idp.sign_up(&new_identity(&email)).await.unwrap();
    if f.codes.sign_in_checks_confirmation() {
        assert_eq!(
            f.idp.sign_in(&email, PASSWORD).await,
            Err(IdentityError::NotConfirmed)
        );
    }
    let user = f.idp.user(&id).await.unwrap();
    assert!(!user.confirmed);
    let code = f.codes.code(&email, "Verify").await;
    f.idp.confirm_sign_up(&email, &code).await.unwrap();

    let tokens = f
        .idp
        .sign_in(&email, PASSWORD)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    assert!(tokens.expires_in > 0);
    let caller = verifier(&f.idp).await.verify(&tokens.access_token).unwrap();
    assert_eq!(caller.user_id, id);
    let user = f.idp.user(&id).await.unwrap();
    assert!(user.confirmed);
    assert_eq!(
        (
            user.email.as_str(),
            user.name.as_str(),
            user.account_type.as_str()
        ),
        (email.as_str(), "Ada Lovelace", "business")
    );
}

pub async fn a_taken_email_and_wrong_credentials_are_refused(f: Fixture, ns: &str) {
    let email = email(ns, "bob");
    confirmed(&f, &email).await;
    assert_eq!(
        f.idp.sign_up(&new_identity(&email)).await,
        Err(IdentityError::EmailTaken)
    );
    assert_eq!(
        f.idp.sign_in(&email, "Wrong password 1").await,
        Err(IdentityError::BadCredentials)
    );
    assert_eq!(
        f.idp.sign_in(&format!("nobody-{email}"), PASSWORD).await,
        Err(IdentityError::BadCredentials)
    );
    assert_eq!(
        f.idp.user("no-such-user").await.map(|u| u.user_id),
        Err(IdentityError::NoSuchUser)
    );
}

pub async fn refresh_gives_new_access_and_sign_out_revokes_refresh(f: Fixture, ns: &str) {
    let email = email(ns, "cleo");
    let id = confirmed(&f, &email).await;
    let tokens = f
        .idp
        .sign_in(&email, PASSWORD)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    let refreshed = f.idp.refresh(&tokens.refresh_token).await.unwrap();
    let caller = verifier(&f.idp)
        .await
        .verify(&refreshed.access_token)
        .unwrap();
    assert_eq!(caller.user_id, id);

    f.idp.sign_out(&id).await.unwrap();
    assert_eq!(
        f.idp.refresh(&refreshed.refresh_token).await,
        Err(IdentityError::BadRefreshToken)
    );
    assert_eq!(
        f.idp.refresh("not-a-refresh-token").await,
        Err(IdentityError::BadRefreshToken)
    );
}

pub async fn a_password_reset_changes_the_password_and_ends_sessions(f: Fixture, ns: &str) {
    let email = email(ns, "dora");
    confirmed(&f, &email).await;
    let before = f
        .idp
        .sign_in(&email, PASSWORD)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    // Unknown addresses are not revealed.
    f.idp
        .forgot_password(&format!("nobody-{email}"))
        .await
        .unwrap();
    f.idp.forgot_password(&email).await.unwrap();
    if f.codes.checks_codes() {
        assert_eq!(
            f.idp
                .confirm_forgot_password(&email, "000000", "Another horse 8 staple")
                .await,
            Err(IdentityError::BadCode)
        );
    }
    let code = f.codes.code(&email, "Reset").await;
    f.idp
        .confirm_forgot_password(&email, &code, "Another horse 8 staple")
        .await
        .unwrap();
    assert_eq!(
        f.idp.sign_in(&email, PASSWORD).await,
        Err(IdentityError::BadCredentials)
    );
    f.idp
        .sign_in(&email, "Another horse 8 staple")
        .await
        .unwrap()
        .tokens()
        .unwrap();
    assert_eq!(
        f.idp.refresh(&before.refresh_token).await,
        Err(IdentityError::BadRefreshToken)
    );
}

pub async fn groups_are_set_read_back_and_carried_by_new_tokens(f: Fixture, ns: &str) {
    let email = email(ns, "eve");
    let id = confirmed(&f, &email).await;
    f.idp
        .set_groups(&id, &["verifier".to_owned()])
        .await
        .unwrap();
    assert_eq!(f.idp.user(&id).await.unwrap().groups, vec!["verifier"]);
    let tokens = f
        .idp
        .sign_in(&email, PASSWORD)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    let caller = verifier(&f.idp).await.verify(&tokens.access_token).unwrap();
    assert!(caller.has_role("verifier"));
    assert!(!caller.has_role("admin"));
    f.idp.set_groups(&id, &["admin".to_owned()]).await.unwrap();
    assert_eq!(f.idp.user(&id).await.unwrap().groups, vec!["admin"]);
    f.idp.set_groups(&id, &[]).await.unwrap();
    assert!(f.idp.user(&id).await.unwrap().groups.is_empty());
}

pub async fn a_confirmed_account_is_made_without_mail(f: Fixture, ns: &str) {
    let email = email(ns, "root");
    let id = f.idp.create_confirmed(&new_identity(&email)).await.unwrap();
    let user = f.idp.user(&id).await.unwrap();
    assert!(user.confirmed);
    assert_eq!(user.user_id, id);
    let tokens = f
        .idp
        .sign_in(&email, PASSWORD)
        .await
        .unwrap()
        .tokens()
        .unwrap();
    assert_eq!(
        verifier(&f.idp)
            .await
            .verify(&tokens.access_token)
            .unwrap()
            .user_id,
        id
    );
    assert_eq!(
        f.idp.create_confirmed(&new_identity(&email)).await,
        Err(IdentityError::EmailTaken)
    );
}

pub async fn wrong_confirmation_codes_are_refused(f: Fixture, ns: &str) {
    if !f.codes.checks_codes() {
        return;
    }
    let email = email(ns, "finn");
    f.idp.sign_up(&new_identity(&email)).await.unwrap();
    assert_eq!(
        f.idp.confirm_sign_up(&email, "000000").await,
        Err(IdentityError::BadCode)
    );
    assert_eq!(
        f.idp.sign_in(&email, PASSWORD).await,
        Err(IdentityError::NotConfirmed)
    );
}

pub async fn totp_enrolment_turns_on_a_challenge_that_takes_a_valid_code(f: Fixture, ns: &str) {
    let email = email(ns, "gus");
    let id = confirmed(&f, &email).await;
    assert_eq!(
        f.idp
            .totp_confirm(&id, PASSWORD, "123456")
            .await
            .err()
            .map(|e| matches!(e, IdentityError::BadCode | IdentityError::NoTotpEnrolment)),
        Some(true),
        "no code is accepted before enrolment"
    );
    // Setting up a second factor takes the password, on both faces: a stolen access token alone
    // cannot put the thief's authenticator on the account.
    assert_eq!(
        f.idp.totp_enrol(&id, "Not the password 9").await,
        Err(IdentityError::BadCredentials)
    );
    let secret = f.idp.totp_enrol(&id, PASSWORD).await.unwrap();
    let key = totp::base32_decode(&secret).expect("a base32 secret");
    let now = totp::step_of(crate::unix_now());
    let wrong = format!(
        "{:06}",
        (totp::code_at_step(&key, now).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_eq!(
        f.idp.totp_confirm(&id, PASSWORD, &wrong).await,
        Err(IdentityError::BadCode)
    );
    assert_eq!(
        f.idp
            .totp_confirm(&id, "Not the password 9", &totp::code_at_step(&key, now))
            .await,
        Err(IdentityError::BadCredentials)
    );
    assert!(!f.idp.user(&id).await.unwrap().mfa_enabled);
    let enrolled = settled_step().await;
    f.idp
        .totp_confirm(&id, PASSWORD, &totp::code_at_step(&key, enrolled))
        .await
        .unwrap();
    assert!(f.idp.user(&id).await.unwrap().mfa_enabled);

    let Ok(SignIn::Totp { session }) = f.idp.sign_in(&email, PASSWORD).await else {
        panic!("sign-in asks for a code once MFA is on");
    };
    assert_eq!(
        f.idp.respond_totp(&session, &wrong).await,
        Err(IdentityError::BadCode)
    );
    let step = settled_step().await;
    // The enrolment used this step's code; the next step's is within the drift window.
    let used_step = step.max(enrolled) + 1;
    let code = if f.codes.totp_codes_work_once() {
        totp::code_at_step(&key, used_step)
    } else {
        totp::code_at_step(&key, step)
    };
    let tokens = f.idp.respond_totp(&session, &code).await.unwrap();
    assert_eq!(
        verifier(&f.idp)
            .await
            .verify(&tokens.access_token)
            .unwrap()
            .user_id,
        id
    );
    assert_eq!(
        f.idp.respond_totp("not-a-session", &code).await,
        Err(IdentityError::BadMfaSession)
    );

    // Turning MFA off takes both factors, on both faces: a stolen access token carries neither.
    assert_eq!(
        f.idp.totp_disable(&id, PASSWORD, &wrong).await,
        Err(IdentityError::BadCode),
        "turning MFA off takes a current code"
    );
    assert_eq!(
        f.idp.totp_disable(&id, "Not the password 9", &code).await,
        Err(IdentityError::BadCredentials),
        "turning MFA off takes the password"
    );
    assert!(f.idp.user(&id).await.unwrap().mfa_enabled);
    let current = if f.codes.totp_codes_work_once() {
        assert_eq!(
            f.idp.totp_disable(&id, PASSWORD, &code).await,
            Err(IdentityError::BadCode),
            "the code the sign-in used does not work again"
        );
        code_after(&key, used_step).await
    } else {
        totp::code_at_step(&key, settled_step().await)
    };
    f.idp.totp_disable(&id, PASSWORD, &current).await.unwrap();
    assert!(!f.idp.user(&id).await.unwrap().mfa_enabled);
    assert!(matches!(
        f.idp.sign_in(&email, PASSWORD).await,
        Ok(SignIn::Tokens(_))
    ));
}

/// Declares one `#[tokio::test]` per identity conformance case. `$fixture` is an async expression
/// giving a [`Fixture`].
#[macro_export]
macro_rules! identity_conformance_tests {
    ($fixture:expr) => {
        $crate::identity_conformance_tests!(@cases $fixture;
            sign_up_confirm_and_sign_in_give_a_verifiable_access_token,
            a_taken_email_and_wrong_credentials_are_refused,
            refresh_gives_new_access_and_sign_out_revokes_refresh,
            a_password_reset_changes_the_password_and_ends_sessions,
            groups_are_set_read_back_and_carried_by_new_tokens,
            a_confirmed_account_is_made_without_mail,
            wrong_confirmation_codes_are_refused,
            totp_enrolment_turns_on_a_challenge_that_takes_a_valid_code
        );
    };
    (@cases $fixture:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture: $crate::identity::Fixture = $fixture.await;
                $crate::identity::$case(fixture, &$crate::namespace()).await;
            }
        )*
    };
}
