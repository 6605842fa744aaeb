//! Embedded adapters for the local runtime: everything lives under one data directory, durable and
//! safe under concurrency, with no network and no AWS account.

mod blobs;
mod commit;
pub mod private;
mod queue;
mod table;

use std::path::Path;
use std::sync::Arc;

pub use blobs::{LocalBlobs, ROUTE_PREFIX as BLOB_ROUTE_PREFIX, Signature, SignedAccess};
pub use queue::RedbQueue;
pub use table::RedbTable;

/// Failure to open or initialise the embedded database.
#[derive(Debug, thiserror::Error)]
#[error("embedded database: {0}")]
pub struct StoreError(String);

macro_rules! store_error_from {
    ($($t:ty),*) => {$(impl From<$t> for StoreError { fn from(e: $t) -> Self { StoreError(e.to_string()) } })*};
}
store_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    std::io::Error
);

/// The database file of the local runtime, shared by the table and the queues.
pub struct EmbeddedStore {
    pub table: RedbTable,
    pub queue: RedbQueue,
}

impl EmbeddedStore {
    /// Opens (or creates) `<data_dir>/amanar.redb`, readable by its owner only. Only one process
    /// may hold it at a time.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        private::create_dir(data_dir)?;
        let path = data_dir.join("amanar.redb");
        private::ensure_file(&path)?;
        // A store closed a moment ago in this process may still be released by a finishing task
        // that holds a handle (an aborted request, a blocking read); give it a moment before
        // reporting the database as held by someone else.
        let mut attempts = 0;
        let db = loop {
            match redb::Database::create(&path) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < 40 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break Arc::new(other?),
            }
        };
        let committer = commit::Committer::start(db.clone())?;
        Ok(Self {
            table: RedbTable::new(db.clone(), committer.clone())?,
            queue: RedbQueue::new(db, committer)?,
        })
    }
}
