//! The identity conformance suite against the Cognito adapter, on a fresh user pool in moto server.

use std::sync::Arc;

use amanar_cognito::{CognitoIdentity, create_user_pool};
use amanar_testkit::identity::{Codes, Fixture};
use amanar_testkit::{aws_endpoint, emulator_sdk_config, namespace};
use async_trait::async_trait;

/// moto sends no mail and never checks sign-up codes; for password resets it accepts any code that
/// is not one of its own `moto-confirmation-code:` codes. Real Cognito checks both (the local
/// provider's run of this suite covers wrong codes). Its admin sign-in flow lets an unconfirmed
/// account in, which real Cognito refuses. It does check TOTP codes (the moto server runs with
/// `MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP`), so turning MFA off is refused without one here too.
struct MotoCodes;

#[async_trait]
impl Codes for MotoCodes {
    async fn code(&self, _email: &str, _subject: &str) -> String {
        "123456".to_owned()
    }

    fn totp_codes_work_once(&self) -> bool {
        false
    }

    fn checks_codes(&self) -> bool {
        false
    }

    fn sign_in_checks_confirmation(&self) -> bool {
        false
    }
}

async fn cognito() -> Fixture {
    let sdk = emulator_sdk_config().await;
    let client = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    // Both app clients have secrets, as in template.yaml: every call that names one carries its
    // SECRET_HASH (moto checks it on refresh and on the TOTP challenge's answer), and TOTP setup
    // goes through the enrolment client.
    let pool = create_user_pool(&client, &namespace()).await.unwrap();
    let endpoint = aws_endpoint();
    Fixture {
        idp: Arc::new(CognitoIdentity::new(
            client,
            "eu-west-1",
            pool.pool_id,
            pool.app,
            Some(pool.enrolment),
            Some(&endpoint),
        )),
        codes: Box::new(MotoCodes),
    }
}

amanar_testkit::identity_conformance_tests!(cognito());
