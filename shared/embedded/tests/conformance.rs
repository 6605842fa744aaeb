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
