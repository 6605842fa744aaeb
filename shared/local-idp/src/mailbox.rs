//! The local runtime's outgoing mail: kept in the table and readable at `GET /_local/mailbox?to=`
//! (a route only the local runtime serves). In AWS, Cognito sends its own mail.

use std::sync::Arc;

use amanar_core::table::{Index, Query, Table, TableError, WriteOp, items};
use amanar_core::{Clock, keys, new_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One sent message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

/// Mail kept for 7 days.
const KEEP_SECS: i64 = 7 * 24 * 3600;

#[derive(Clone)]
pub struct Mailbox {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

impl Mailbox {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    pub async fn send(&self, to: &str, subject: &str, text: &str) -> Result<(), TableError> {
        let sent_at = self.clock.now();
        let mail = Mail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
            sent_at,
        };
        let key = keys::mailbox_message(to, sent_at, &new_id("mail"));
        let mut item = items::with_key(&key, &mail)?;
        item.insert(
            amanar_core::table::EXPIRES_AT.into(),
            (sent_at.timestamp() + KEEP_SECS).into(),
        );
        self.table.write(vec![WriteOp::put(item)]).await?;
        tracing::info!(subject, "mail sent to the local mailbox");
        Ok(())
    }

    /// Up to 50 messages to `to`, newest first.
    pub async fn read(&self, to: &str) -> Result<Vec<Mail>, TableError> {
        let page = self
            .table
            .query(
                &Query::partition(Index::Primary, keys::mailbox(to))
                    .backward()
                    .limit(50),
            )
            .await?;
        page.items.into_iter().map(items::parse).collect()
    }
}

#[async_trait::async_trait]
impl amanar_core::mail::Mailer for Mailbox {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<(), amanar_core::mail::MailError> {
        Mailbox::send(self, to, subject, text)
            .await
            .map_err(|e| amanar_core::mail::MailError::Unavailable(e.to_string()))
    }
}
