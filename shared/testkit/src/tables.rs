//! One table per face for the stores' tests (feature `tables`), and [`both_faces!`], which runs
//! each case on both: the embedded table and DynamoDB on the emulator.

use std::sync::{Arc, OnceLock};

use amanar_core::table::Table;

use crate::{block_on_own_runtime, emulator_sdk_config, namespace};

/// The embedded table, one per test binary (cases use their own ids).
pub fn embedded() -> Arc<dyn Table> {
    static TABLE: OnceLock<Arc<dyn Table>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            Arc::new(amanar_embedded::EmbeddedStore::open(&dir).unwrap().table)
        })
        .clone()
}

/// A DynamoDB table on the emulator, one per test binary run.
pub async fn dynamo() -> Arc<dyn Table> {
    static NAME: OnceLock<String> = OnceLock::new();
    let name = NAME
        .get_or_init(|| {
            block_on_own_runtime(async {
                let name = format!("stores-{}", namespace());
                let client = aws_sdk_dynamodb::Client::new(&emulator_sdk_config().await);
                amanar_dynamo::DynamoTable::new(client, &name)
                    .create_table()
                    .await
                    .expect("create table on the emulator");
                name
            })
        })
        .clone();
    Arc::new(amanar_dynamo::DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&emulator_sdk_config().await),
        name,
    ))
}

/// Runs each named case (an `async fn(Arc<dyn Table>)`) on the embedded table and on DynamoDB.
#[macro_export]
macro_rules! both_faces {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::tables::embedded()).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::tables::dynamo().await).await;
                }
            )*
        }
    };
}
