//! The Blobs conformance suite against the local filesystem adapter, with its signed URLs served by
//! a running local runtime.

use std::sync::Arc;

use amanar_app::config::{Config, Face};
use amanar_core::Blobs;

async fn served_blobs() -> Arc<dyn Blobs> {
    let dir = tempfile::tempdir()
        .unwrap()
        .keep()
        .to_string_lossy()
        .into_owned();
    let config = Config::from_lookup(Face::Local, |name| match name {
        "AMANAR_DATA_DIR" => Some(dir.clone()),
        "AMANAR_ADDR" => Some("127.0.0.1:0".into()),
        "AMANAR_PUBLIC_URL" => Some("http://127.0.0.1:0".into()),
        _ => None,
    })
    .unwrap();
    let running = amanar_local::start(config).await.unwrap();
    let blobs = running.ports().blobs.clone();
    // Dropping the runtime would abort its server; it serves until the test's runtime ends.
    Box::leak(Box::new(running));
    blobs
}

amanar_testkit::blob_conformance_tests!(served_blobs());
