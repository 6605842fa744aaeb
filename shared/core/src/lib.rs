//! Core of AmanarCarbon: the ports every context talks to (table, queue, blobs, clock), the key
//! design of the single table and the typed message contracts. No SDK appears here.

pub mod blobs;
pub mod clock;
pub mod context;
pub mod keys;
pub mod mail;
pub mod messages;
pub mod outbox;
pub mod queue;
pub mod table;
pub mod workflow;

pub use blobs::{Blob, BlobError, Blobs, Bucket, PresignedRequest, UploadPolicy};
pub use clock::{Clock, ManualClock, SystemClock, new_id};
pub use context::{DepsError, FromDeps, Need, Provide};
pub use queue::{JobError, JobHandler, Queue, QueueError, QueueName, Received};
pub use table::{
    Condition, Cursor, Index, IndexKey, Item, Key, Page, Query, SortKey, Table, TableError, Update,
    WriteOp,
};

use std::sync::Arc;

/// The ports every context may use, built once per process and shared.
#[derive(Clone)]
pub struct Ports {
    pub table: Arc<dyn Table>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn Blobs>,
    pub clock: Arc<dyn Clock>,
}

/// Code written over all four ports (uploads, imports, the sweepers) takes them as its state.
impl<D: Provide<Ports> + Sync> FromDeps<D> for Ports {
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        deps.provide().await
    }
}

/// FNV-1a, 64 bits: a fingerprint stable across processes, builds and machines (the standard
/// hasher is seeded per process). Not for anything an attacker must not collide.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_gives_the_published_test_vectors() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
