//! The Mailer port on Amazon SES (API v2): plain-text messages from one verified sender address.

use amanar_core::mail::{MailError, Mailer};
use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    /// `from` must be an identity SES has verified (template.yaml declares it).
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Refused(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(content(subject)?)
            .body(Body::builder().text(content(text)?).build())
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let detail = format!(
                    "{}: {}",
                    e.code().unwrap_or("unknown"),
                    e.message().unwrap_or("no message")
                );
                Err(classify(e.code(), detail))
            }
        }
    }
}

/// What an SES error means to the sender: a refusal of this message (not worth retrying), or
/// the service not sending for now. A paused or suspended account stops every message until
/// someone acts; calling it unavailable keeps the messages (retried, then in a dead-letter
/// queue with its alarm) instead of recording each as refused.
fn classify(code: Option<&str>, detail: String) -> MailError {
    match code {
        Some("MessageRejected" | "MailFromDomainNotVerifiedException" | "BadRequestException") => {
            MailError::Refused(detail)
        }
        _ => MailError::Unavailable(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_message_is_refused_and_a_paused_account_is_unavailable() {
        let refused = |code| matches!(classify(Some(code), String::new()), MailError::Refused(_));
        assert!(refused("MessageRejected"));
        assert!(refused("MailFromDomainNotVerifiedException"));
        assert!(!refused("SendingPausedException"));
        assert!(!refused("AccountSuspendedException"));
        assert!(!refused("TooManyRequestsException"));
        assert!(matches!(
            classify(None, String::new()),
            MailError::Unavailable(_)
        ));
    }
}
