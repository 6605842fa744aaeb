//! The Table conformance suite against DynamoDB, served by moto server (started by infra/test.sh).

use std::sync::{Arc, OnceLock};

use amanar_core::table::Table;
use amanar_dynamo::DynamoTable;
use amanar_testkit::{block_on_own_runtime, emulator_sdk_config, namespace};

/// One table for every case of this binary, created once; each case gets its own client.
async fn shared_table() -> Arc<dyn Table> {
    static NAME: OnceLock<String> = OnceLock::new();
    let name = NAME
        .get_or_init(|| {
            block_on_own_runtime(async {
                let name = format!("conformance-{}", namespace());
                let client = aws_sdk_dynamodb::Client::new(&emulator_sdk_config().await);
                DynamoTable::new(client, &name)
                    .create_table()
                    .await
                    .expect("create table on the emulator");
                name
            })
        })
        .clone();
    Arc::new(DynamoTable::new(
        aws_sdk_dynamodb::Client::new(&emulator_sdk_config().await),
        name,
    ))
}

amanar_testkit::table_conformance_tests!(shared_table());
