//! The Blobs conformance suite against the local filesystem adapter, with its signed URLs served by
//! a running local runtime.

use std::sync::Arc;

use amanar_core::Blobs;
use amanar_journeys::start;

async fn served_blobs() -> Arc<dyn Blobs> {
    let (running, dir) = start().await;
    let blobs = running.ports().blobs.clone();
    // Dropping the runtime would abort its server, and dropping the guard would delete its data; both
    // stay until the test's runtime ends.
    let _ = dir.keep();
    Box::leak(Box::new(running));
    blobs
}

amanar_testkit::blob_conformance_tests!(served_blobs());
