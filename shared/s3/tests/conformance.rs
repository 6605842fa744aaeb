//! The Blobs conformance suite against S3, served by moto server (started by infra/test.sh).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use amanar_core::blobs::{Blobs, Bucket};
use amanar_s3::S3Blobs;
use amanar_testkit::{block_on_own_runtime, emulator_sdk_config, namespace};

async fn client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&emulator_sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// One pair of buckets for every case of this binary, created once.
async fn shared_blobs() -> Arc<dyn Blobs> {
    static BUCKETS: OnceLock<HashMap<Bucket, String>> = OnceLock::new();
    let buckets = BUCKETS
        .get_or_init(|| {
            block_on_own_runtime(async {
                let ns = namespace();
                let buckets: HashMap<Bucket, String> = Bucket::ALL
                    .into_iter()
                    .map(|b| (b, format!("{ns}-{}", b.as_str())))
                    .collect();
                S3Blobs::new(client().await, buckets.clone())
                    .create_buckets()
                    .await
                    .expect("create buckets on the emulator");
                buckets
            })
        })
        .clone();
    Arc::new(S3Blobs::new(client().await, buckets))
}

amanar_testkit::blob_conformance_tests!(shared_blobs());
