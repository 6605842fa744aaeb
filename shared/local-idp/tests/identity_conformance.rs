//! The identity conformance suite against the local provider, on the embedded table.

use std::sync::Arc;

use amanar_core::{SystemClock, Table};
use amanar_local_idp::{LocalIdentity, Mailbox};
use amanar_testkit::identity::{Codes, Fixture};
use async_trait::async_trait;

struct MailboxCodes(Mailbox);

#[async_trait]
impl Codes for MailboxCodes {
    async fn code(&self, email: &str, subject: &str) -> String {
        let mail = self.0.read(email).await.unwrap();
        let text = &mail
            .iter()
            .find(|m| m.subject.contains(subject))
            .unwrap_or_else(|| panic!("a {subject} mail to {email}"))
            .text;
        amanar_testkit::mailed_code(text)
    }

    fn totp_codes_work_once(&self) -> bool {
        true
    }

    fn checks_codes(&self) -> bool {
        true
    }
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = amanar_embedded::EmbeddedStore::open(&dir).unwrap();
    let table: Arc<dyn Table> = Arc::new(store.table.clone());
    let clock = Arc::new(SystemClock);
    let idp = LocalIdentity::open(
        table.clone(),
        clock.clone(),
        "http://127.0.0.1:3000",
        b"test code key",
    )
    .await
    .unwrap();
    Fixture {
        idp: Arc::new(idp),
        codes: Box::new(MailboxCodes(Mailbox::new(table, clock))),
    }
}

amanar_testkit::identity_conformance_tests!(local());
