//! Test support: conformance suites that every adapter of a port must pass, and helpers for tests
//! that talk to the emulators started by the test command.

pub mod blobs;
pub mod identity;
pub mod lambda;
pub mod queue;
pub mod table;
#[cfg(feature = "tables")]
pub mod tables;

/// A fresh namespace for one test case, so cases can share a table or bucket.
pub fn namespace() -> String {
    format!("t{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Endpoint of the AWS emulator (moto server) that the test command started. Tests that need it
/// fail loudly without it rather than being skipped.
pub fn aws_endpoint() -> String {
    std::env::var("AMANAR_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("AMANAR_TEST_AWS_ENDPOINT is not set: run the tests with ./infra/test.sh, which starts moto server")
    })
}

/// The localstripe server the test command started (`AMANAR_TEST_STRIPE_API_BASE`).
pub fn stripe_api_base() -> String {
    std::env::var("AMANAR_TEST_STRIPE_API_BASE").unwrap_or_else(|_| {
        panic!("AMANAR_TEST_STRIPE_API_BASE is not set: run the tests with ./infra/test.sh, which starts localstripe")
    })
}

/// AWS SDK configuration aimed at the emulator, with dummy credentials; nothing is read from or
/// written to the process environment.
pub async fn emulator_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "emulator",
        ))
        .load()
        .await
}

/// Runs async set-up (creating an emulator table or bucket) once per test binary, on its own runtime:
/// each `#[tokio::test]` has a runtime of its own, and SDK clients must not outlive theirs.
pub fn block_on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join()
    .expect("set-up thread")
}

/// Mail that SES on the emulator accepted (moto records it instead of sending): each
/// `{source, destinations: {ToAddresses}, subject, body}`.
pub async fn emulator_sent_mail() -> Vec<serde_json::Value> {
    // Our moto launcher's own route (infra/emulators/moto_server.py): moto's whole-state dump
    // races with concurrent Cognito requests.
    let data: serde_json::Value = reqwest::get(format!("{}/_amanar/ses-messages", aws_endpoint()))
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("the SES messages are JSON");
    data["messages"].as_array().cloned().unwrap_or_default()
}

/// Whether the emulator's SES accepted a message to `to` whose subject contains `subject`.
pub async fn emulator_sent_mail_to(to: &str, subject: &str) -> bool {
    emulator_sent_mail().await.iter().any(|m| {
        m["subject"].as_str().is_some_and(|s| s.contains(subject))
            && m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == to))
    })
}

/// The six-digit code in a mail's text (verification, reset).
pub fn mailed_code(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("a six-digit code in {text:?}"))
        .to_owned()
}

/// Seconds since the Unix epoch, for computing TOTP codes in tests.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}
