//! The Mailer port: outgoing email (invitations now; notifications later). The local runtime keeps
//! mail in a mailbox it serves at `GET /_local/mailbox`; in AWS it goes out through SES.

use async_trait::async_trait;

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The provider refused the message (an unverified sender, a suppressed address).
    #[error("mail refused: {0}")]
    Refused(String),
    /// The provider could not be reached or failed; retrying may work.
    #[error("mail unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends a plain-text message.
    async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), MailError>;
}
