//! The SES mailer against SES v2 on moto server: a verified sender sends, an unverified one is
//! refused (as SES does).

use amanar_core::mail::{MailError, Mailer};
use amanar_ses::SesMailer;
use amanar_testkit::{emulator_sdk_config, namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_sender_sends_and_an_unverified_one_is_refused() {
    let sdk = emulator_sdk_config().await;
    let client = aws_sdk_sesv2::Client::new(&sdk);
    let from = format!("no-reply-{}@amanar.example", namespace());
    let unverified = SesMailer::new(client.clone(), &from);
    assert!(matches!(
        unverified.send("ada@example.com", "Hello", "Hi Ada").await,
        Err(MailError::Refused(_))
    ));

    client
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    let mailer = SesMailer::new(client.clone(), &from);
    let to = format!("ada-{}@example.com", namespace());
    mailer
        .send(&to, "You are invited", "Join Acme on AmanarCarbon.")
        .await
        .unwrap();
    assert!(amanar_testkit::emulator_sent_mail_to(&to, "You are invited").await);
}
