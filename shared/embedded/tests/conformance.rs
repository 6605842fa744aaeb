//! The Table and Queue conformance suites against the embedded (redb) adapters.

use std::sync::{Arc, OnceLock};

use amanar_core::queue::Queue;
use amanar_core::table::Table;
use amanar_embedded::EmbeddedStore;

/// One database for all table cases (they use their own namespaces), as a deployed table would be.
async fn shared_table() -> Arc<dyn Table> {
    static TABLE: OnceLock<Arc<dyn Table>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            Arc::new(EmbeddedStore::open(&dir).unwrap().table)
        })
        .clone()
}

async fn fresh_queue() -> Arc<dyn Queue> {
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(EmbeddedStore::open(&dir).unwrap().queue)
}

mod table {
    use super::*;
    amanar_testkit::table_conformance_tests!(shared_table());
}

mod queue {
    use super::*;
    amanar_testkit::queue_conformance_tests!(fresh_queue());
}

/// A restart redelivers at once what the previous run received and did not finish, and keeps
/// the time of what it rescheduled (a retry backoff) or never received (a delayed send).
#[tokio::test]
async fn a_reopened_store_redelivers_unfinished_deliveries_at_once() {
    use amanar_core::QueueName;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let long = Duration::from_secs(600);
    {
        let queue = EmbeddedStore::open(dir.path()).unwrap().queue;
        for body in ["unfinished", "backing-off"] {
            queue
                .send(QueueName::Purchases, body, Duration::ZERO)
                .await
                .unwrap();
        }
        queue
            .send(QueueName::Purchases, "delayed", Duration::from_secs(300))
            .await
            .unwrap();
        let got = queue
            .receive(QueueName::Purchases, 10, long, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        let backing_off = got.iter().find(|m| m.body == "backing-off").unwrap();
        queue
            .change_visibility(QueueName::Purchases, &backing_off.receipt, long)
            .await
            .unwrap();
    }
    let queue = EmbeddedStore::open(dir.path()).unwrap().queue;
    let got = queue
        .receive(QueueName::Purchases, 10, long, Duration::ZERO)
        .await
        .unwrap();
    let bodies: Vec<(&str, u32)> = got
        .iter()
        .map(|m| (m.body.as_str(), m.receive_count))
        .collect();
    assert_eq!(bodies, [("unfinished", 2)]);
    assert_eq!(queue.depth(QueueName::Purchases).await.unwrap(), 3);
}
