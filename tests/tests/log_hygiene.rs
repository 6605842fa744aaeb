//! Logs never carry passwords, codes, tokens or email addresses: a whole account journey runs with
//! every AmanarCarbon crate logging at trace level, and the captured output is searched for each
//! secret the journey used.

use std::io::Write;
use std::sync::{Arc, Mutex};

use amanar_journeys::start;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_journey_logs_no_secret_and_no_email() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,amanar_accounts=trace,amanar_http=trace,amanar_app=trace,amanar_local=trace,amanar_cognito=trace",
        ))
        .json()
        .with_writer(move || writer.clone())
        .init();

    let (running, _dir) = start().await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let email = "secret.person@example.com";
    let password = "Hunter2 is not 12 chars";
    let new_password = "Brand new secret 99";

    post("/v1/auth/register", json!({"email": email, "password": password, "name": "Secret Person", "accountType": "individual"})).await.unwrap();
    let mail: Value = client
        .get(format!("{base}/_local/mailbox?to={email}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = mail["items"][0]["text"].as_str().unwrap();
    let code = amanar_testkit::mailed_code(text);
    post(
        "/v1/auth/verify-email",
        json!({"email": email, "code": "999999"}),
    )
    .await
    .unwrap();
    post(
        "/v1/auth/verify-email",
        json!({"email": email, "code": code}),
    )
    .await
    .unwrap();
    post(
        "/v1/auth/login",
        json!({"email": email, "password": "Wrong password 1"}),
    )
    .await
    .unwrap();
    let tokens: Value = post(
        "/v1/auth/login",
        json!({"email": email, "password": password}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = tokens["accessToken"].as_str().unwrap().to_owned();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_owned();
    client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/v1/me"))
        .bearer_auth("garbage.token.here")
        .send()
        .await
        .unwrap();
    post("/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await
        .unwrap();
    post("/v1/auth/refresh", json!({"refreshToken": refresh}))
        .await
        .unwrap();
    post("/v1/auth/password/forgot", json!({"email": email}))
        .await
        .unwrap();
    let mail: Value = client
        .get(format!("{base}/_local/mailbox?to={email}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reset_text = mail["items"][0]["text"].as_str().unwrap();
    let reset_code = amanar_testkit::mailed_code(reset_text);
    post(
        "/v1/auth/password/reset",
        json!({"email": email, "code": reset_code, "newPassword": new_password}),
    )
    .await
    .unwrap();
    // Locks log a warning: it must name the limit, not the email in its key.
    let locked = "locked.person@example.com";
    for n in 0..5 {
        post(
            "/v1/auth/login",
            json!({"email": locked, "password": format!("Wrong password {n}")}),
        )
        .await
        .unwrap();
    }
    for n in 0..10 {
        post(
            "/v1/auth/password/reset",
            json!({"email": locked, "code": format!("{:06}", 100_000 + n), "newPassword": new_password}),
        )
        .await
        .unwrap();
    }
    running.shutdown().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.matches("locked after repeated failures").count() >= 2,
        "both locks were logged:\n{logs}"
    );
    assert!(
        logs.contains("\"served\""),
        "the journey was logged at all:\n{logs}"
    );
    assert!(
        logs.contains("refresh token reuse"),
        "the reuse was logged:\n{logs}"
    );
    let access_signature = access.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("email", email),
        ("email local part", "secret.person"),
        ("locked email", "locked.person"),
        ("password", password),
        ("new password", new_password),
        ("access token", access_signature),
        ("refresh token", refresh.as_str()),
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain the {what}:\n{logs}"
        );
    }
    for (what, code) in [("verification code", &code), ("reset code", &reset_code)] {
        assert!(
            !contains_number(&logs, code),
            "the logs contain the {what}:\n{logs}"
        );
    }
}

/// Whether `number` occurs in `text` as a whole number (so a timing like 1234567 does not count).
fn contains_number(text: &str, number: &str) -> bool {
    text.match_indices(number).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + number.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}
