//! What the platform's tests share: ports on a fresh embedded store, with a manual clock.

use std::sync::Arc;

use amanar_core::{ManualClock, Ports};
use amanar_embedded::{EmbeddedStore, LocalBlobs};

pub fn ports() -> (Ports, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = EmbeddedStore::open(&dir).unwrap();
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let ports = Ports {
        table: Arc::new(store.table),
        queue: Arc::new(store.queue),
        blobs: Arc::new(LocalBlobs::new(
            dir.join("blobs"),
            "http://127.0.0.1:9",
            vec![7; 32],
        )),
        clock: clock.clone(),
    };
    (ports, clock)
}
