//! A storage failure under an account use case reaches the client through the one mapping of
//! table errors: transient is a 503 with `Retry-After`, anything else a 500 that says nothing of it.

use std::sync::{Arc, Mutex};

use amanar_accounts::Accounts;
use amanar_core::table::{Page, Query, WriteOp};
use amanar_core::{Item, Key, SystemClock, Table, TableError};
use amanar_http::ApiError;
use amanar_local_idp::LocalIdentity;
use async_trait::async_trait;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// The embedded table, failing every operation on partitions that start with a prefix once told to.
struct Failing {
    inner: Arc<dyn Table>,
    failure: Mutex<Option<(&'static str, TableError)>>,
}

impl Failing {
    fn fail(&self, partitions_starting_with: &'static str, error: TableError) {
        *self.failure.lock().unwrap() = Some((partitions_starting_with, error));
    }

    fn check<'k>(&self, mut partitions: impl Iterator<Item = &'k str>) -> Result<(), TableError> {
        match &*self.failure.lock().unwrap() {
            Some((prefix, error)) if partitions.any(|pk| pk.starts_with(prefix)) => {
                Err(error.clone())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Table for Failing {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.check(std::iter::once(key.pk.as_str()))?;
        self.inner.get(key).await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        self.check(keys.iter().map(|k| k.pk.as_str()))?;
        self.inner.batch_get(keys).await
    }

    async fn query(&self, query: &Query) -> Result<Page, TableError> {
        self.check(std::iter::once(query.partition.as_str()))?;
        self.inner.query(query).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        let keys: Vec<Key> = ops.iter().filter_map(|op| op.key().ok()).collect();
        self.check(keys.iter().map(|k| k.pk.as_str()))?;
        self.inner.write(ops).await
    }
}

async fn accounts() -> (Accounts, Arc<Failing>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = amanar_embedded::EmbeddedStore::open(&dir).unwrap();
    let table = Arc::new(Failing {
        inner: Arc::new(store.table.clone()),
        failure: Mutex::new(None),
    });
    let clock = Arc::new(SystemClock);
    let idp = LocalIdentity::open(
        table.clone(),
        clock.clone(),
        "http://127.0.0.1:3000",
        b"test code key",
    )
    .await
    .unwrap();
    (Accounts::new(Arc::new(idp), table.clone(), clock), table)
}

/// Status, `Retry-After` and body of the response a use case's error becomes.
async fn answer(error: impl Into<ApiError>) -> (StatusCode, Option<String>, String) {
    let response = error.into().into_response();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_throttled_table_makes_a_use_case_a_503_with_retry_after() {
    let (accounts, table) = accounts().await;
    table.fail("", TableError::Throttled);
    let error = accounts.profile("usr_1").await.unwrap_err();
    let (status, retry_after, body) = answer(error).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());
    assert!(body.contains("problems/unavailable"), "{body}");
}

#[tokio::test]
async fn an_unavailable_store_under_the_local_identity_provider_is_a_503_too() {
    let (accounts, table) = accounts().await;
    // Only the provider's own items fail: the lockout counter is written, the credentials are not read.
    table.fail(
        "IDP#",
        TableError::Unavailable("timed out after 3 attempts".into()),
    );
    let error = accounts
        .login("ada@example.com", "a password")
        .await
        .unwrap_err();
    let (status, retry_after, _) = answer(error).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn a_corrupt_store_makes_a_use_case_a_500_that_keeps_the_detail_to_the_log() {
    let (accounts, table) = accounts().await;
    table.fail(
        "",
        TableError::Backend("stored item is corrupt: USER#usr_1".into()),
    );
    let error = accounts.profile("usr_1").await.unwrap_err();
    let (status, retry_after, body) = answer(error).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(retry_after, None);
    assert!(
        !body.contains("corrupt") && !body.contains("usr_1"),
        "{body}"
    );
}
