//! `RedbTable`: the Table port on redb, an embedded ACID key-value store.
//!
//! Layout: one redb table holds the items, keyed by `pk 0x00 sk 0x00`; each GSI is a redb table keyed
//! by `gpk 0x00 gsk 0x00 pk 0x00 sk 0x00` whose value is the item's base key. Byte order of these
//! keys is the DynamoDB order of (partition, sort) for strings without NUL, which keys may not hold.
//! A write checks every condition before it changes anything, then applies all its operations, in
//! the committer's transaction (`commit.rs`: concurrent writes share one transaction and one
//! fsync); the commit is durable before `write` returns.

use std::ops::Bound;
use std::sync::Arc;

use amanar_core::table::{
    self, Condition, Cursor, CursorPosition, Index, Item, Key, Page, Query, SortKey, Table,
    TableError, WriteOp,
};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::StoreError;
use crate::commit::{Committer, Staged, Uncommitted};

const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("items");
const GSI1: TableDefinition<&[u8], &[u8]> = TableDefinition::new("gsi1");
const GSI2: TableDefinition<&[u8], &[u8]> = TableDefinition::new("gsi2");

fn definition(index: Index) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match index {
        Index::Primary => ITEMS,
        Index::Gsi1 => GSI1,
        Index::Gsi2 => GSI2,
    }
}

/// The Table port backed by a redb database file.
#[derive(Clone)]
pub struct RedbTable {
    db: Arc<Database>,
    committer: Committer,
}

impl RedbTable {
    /// Write transactions the store's committer has run so far, for the table and the queues
    /// together: durable writes over this is how well group commit batches (operations, benches).
    pub fn transactions(&self) -> u64 {
        self.committer.transactions()
    }

    pub(crate) fn new(db: Arc<Database>, committer: Committer) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        for index in Index::ALL {
            txn.open_table(definition(index))?;
        }
        txn.commit()?;
        Ok(Self { db, committer })
    }

    /// Reads that may take long run on Tokio's blocking pool, so they never stall the async
    /// workers: query pages larger than [`INLINE_QUERY_LIMIT`].
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, TableError> + Send + 'static,
    ) -> Result<T, TableError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| TableError::Backend(format!("table task failed: {e}")))?
    }

    /// Reads of bounded size run inline on the calling task. A redb read transaction never waits
    /// for a commit's fsync (it shares only short in-process locks with the writer and sees the
    /// last commit), and a point read or a page of at most [`INLINE_QUERY_LIMIT`] items takes
    /// microseconds when its pages are cached (an uncached page is one `pread`). That is less than
    /// the two thread hand-offs of the blocking pool (`GET /v1/health` under wrk, BENCHMARKS.md
    /// "The request path under wrk"). Larger pages go to the pool.
    async fn reading<T: Send + 'static>(
        &self,
        inline: bool,
        work: impl FnOnce(&Database) -> Result<T, TableError> + Send + 'static,
    ) -> Result<T, TableError> {
        if inline {
            work(&self.db)
        } else {
            self.blocking(work).await
        }
    }
}

/// The largest query page read inline rather than on the blocking pool.
pub const INLINE_QUERY_LIMIT: usize = 100;

/// Appends `part 0x00`, refusing parts that hold NUL (they would break the ordering).
fn push_part(out: &mut Vec<u8>, part: &str) -> Result<(), TableError> {
    if part.as_bytes().contains(&0) {
        return Err(TableError::Invalid(
            "key attributes cannot contain NUL".into(),
        ));
    }
    out.extend_from_slice(part.as_bytes());
    out.push(0);
    Ok(())
}

fn encode(parts: &[&str]) -> Result<Vec<u8>, TableError> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        push_part(&mut out, part)?;
    }
    Ok(out)
}

fn base_key(key: &Key) -> Result<Vec<u8>, TableError> {
    encode(&[&key.pk, &key.sk])
}

/// Full key of an entry in an index.
fn index_key(
    index: Index,
    index_pk: &str,
    index_sk: &str,
    key: &Key,
) -> Result<Vec<u8>, TableError> {
    match index {
        Index::Primary => base_key(key),
        _ => encode(&[index_pk, index_sk, &key.pk, &key.sk]),
    }
}

fn with_suffix(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + suffix.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(suffix);
    out
}

/// Byte range of a query's partition and sort-key condition (see the module doc for the encoding).
/// Lower and upper bound of a scan over index keys.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

fn query_range(query: &Query) -> Result<KeyRange, TableError> {
    let mut partition = Vec::new();
    push_part(&mut partition, &query.partition)?;
    let value = |v: &str| -> Result<Vec<u8>, TableError> {
        if v.as_bytes().contains(&0) {
            return Err(TableError::Invalid(
                "key attributes cannot contain NUL".into(),
            ));
        }
        Ok(with_suffix(&partition, v.as_bytes()))
    };
    // For a sort value v: entries with sort key v start at `v 0x00`; keys above v start at `v 0x01`
    // or differ before the end of v.
    let at_or_after = |v: &str| {
        value(v).map(|mut b| {
            b.push(0);
            Bound::Included(b)
        })
    };
    let after = |v: &str| {
        value(v).map(|mut b| {
            b.push(1);
            Bound::Included(b)
        })
    };
    let at_or_before = |v: &str| {
        value(v).map(|mut b| {
            b.push(1);
            Bound::Excluded(b)
        })
    };
    let before = |v: &str| {
        value(v).map(|mut b| {
            b.push(0);
            Bound::Excluded(b)
        })
    };
    let start = Bound::Included(partition.clone());
    let mut end_of_partition = partition.clone();
    *end_of_partition
        .last_mut()
        .expect("partition ends with 0x00") = 1;
    let end = Bound::Excluded(end_of_partition);
    Ok(match &query.sort {
        None => (start, end),
        Some(SortKey::Equals(v)) => (at_or_after(v)?, at_or_before(v)?),
        Some(SortKey::BeginsWith(p)) => {
            let lower = value(p)?;
            // 0xFF never occurs in UTF-8, so it sorts after every continuation of the prefix.
            let upper = with_suffix(&lower, &[0xFF]);
            (Bound::Included(lower), Bound::Excluded(upper))
        }
        Some(SortKey::Between(a, b)) => (at_or_after(a)?, at_or_before(b)?),
        Some(SortKey::LessThan(v)) => (start, before(v)?),
        Some(SortKey::AtMost(v)) => (start, at_or_before(v)?),
        Some(SortKey::GreaterThan(v)) => (after(v)?, end),
        Some(SortKey::AtLeast(v)) => (at_or_after(v)?, end),
    })
}

/// A write whose transaction did not commit wrote nothing: a neighbour in its batch broke the
/// transaction, or storage failed. Either way it is worth another try (a 503, not a 500).
impl From<Uncommitted> for TableError {
    fn from(e: Uncommitted) -> Self {
        TableError::Unavailable(e.0)
    }
}

fn decode_item(bytes: &[u8]) -> Result<Item, TableError> {
    serde_json::from_slice(bytes)
        .map_err(|e| TableError::Backend(format!("stored item is corrupt: {e}")))
}

fn storage<E: std::fmt::Display>(error: E) -> TableError {
    TableError::Backend(error.to_string())
}

fn read_item(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<Item>, TableError> {
    match table.get(key).map_err(storage)? {
        Some(value) => Ok(Some(decode_item(value.value())?)),
        None => Ok(None),
    }
}

/// One operation's change to the stored bytes, worked out before anything is written: the base
/// key, the GSI entries to remove and insert, and the item's new bytes (`None` removes it). Only
/// storage can fail once a write applies its changes.
struct Change {
    base: Vec<u8>,
    unindex: Vec<(usize, Vec<u8>)>,
    index: Vec<(usize, Vec<u8>)>,
    bytes: Option<Vec<u8>>,
}

fn change(key: &Key, old: Option<&Item>, new: Option<&Item>) -> Result<Change, TableError> {
    let mut change = Change {
        base: base_key(key)?,
        unindex: Vec::new(),
        index: Vec::new(),
        bytes: new.map(serde_json::to_vec).transpose().map_err(storage)?,
    };
    for (n, index) in [Index::Gsi1, Index::Gsi2].into_iter().enumerate() {
        if let Some((p, s)) = old.and_then(|item| index.key_of(item)) {
            change.unindex.push((n, index_key(index, &p, &s, key)?));
        }
        if let Some((p, s)) = new.and_then(|item| index.key_of(item)) {
            change.index.push((n, index_key(index, &p, &s, key)?));
        }
    }
    Ok(change)
}

/// Checks every operation's conditions against the current items and works out its change;
/// writes nothing.
fn plan(txn: &WriteTransaction, ops: &[WriteOp], keys: &[Key]) -> Result<Vec<Change>, TableError> {
    let items = txn.open_table(ITEMS).map_err(storage)?;
    let mut changes = Vec::with_capacity(ops.len());
    for (index, (op, key)) in ops.iter().zip(keys).enumerate() {
        let current = read_item(&items, &base_key(key)?)?;
        conditions_checked(index, key, op.conditions(), current.as_ref())?;
        match op {
            WriteOp::Put { item, .. } => changes.push(change(key, current.as_ref(), Some(item))?),
            WriteOp::Update { update, .. } => {
                let next = update.apply(key, current.clone())?;
                changes.push(change(key, current.as_ref(), Some(&next))?);
            }
            WriteOp::Delete { .. } if current.is_some() => {
                changes.push(change(key, current.as_ref(), None)?)
            }
            WriteOp::Delete { .. } | WriteOp::ConditionCheck { .. } => {}
        }
    }
    Ok(changes)
}

/// Writes planned changes, keeping both GSIs in step with the items.
fn apply(txn: &WriteTransaction, changes: &[Change]) -> Result<(), TableError> {
    let mut items = txn.open_table(ITEMS).map_err(storage)?;
    let mut gsis = [
        txn.open_table(GSI1).map_err(storage)?,
        txn.open_table(GSI2).map_err(storage)?,
    ];
    for change in changes {
        for (n, entry) in &change.unindex {
            gsis[*n].remove(entry.as_slice()).map_err(storage)?;
        }
        for (n, entry) in &change.index {
            gsis[*n]
                .insert(entry.as_slice(), change.base.as_slice())
                .map_err(storage)?;
        }
        match &change.bytes {
            Some(bytes) => {
                items
                    .insert(change.base.as_slice(), bytes.as_slice())
                    .map_err(storage)?;
            }
            None => {
                items.remove(change.base.as_slice()).map_err(storage)?;
            }
        }
    }
    Ok(())
}

fn conditions_checked(
    index: usize,
    key: &Key,
    conditions: &[Condition],
    current: Option<&Item>,
) -> Result<(), TableError> {
    if table::conditions_hold(conditions, current) {
        Ok(())
    } else {
        Err(TableError::ConditionFailed {
            index,
            pk: key.pk.clone(),
            sk: key.sk.clone(),
        })
    }
}

#[async_trait]
impl Table for RedbTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let key = base_key(key)?;
        self.reading(true, move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let items = txn.open_table(ITEMS).map_err(storage)?;
            read_item(&items, &key)
        })
        .await
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        if keys.len() > table::MAX_BATCH_GET {
            return Err(TableError::Invalid(format!(
                "batch_get takes at most {} keys",
                table::MAX_BATCH_GET
            )));
        }
        let keys = keys.iter().map(base_key).collect::<Result<Vec<_>, _>>()?;
        self.reading(true, move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let items = txn.open_table(ITEMS).map_err(storage)?;
            keys.iter().map(|key| read_item(&items, key)).collect()
        })
        .await
    }

    async fn query(&self, query: &Query) -> Result<Page, TableError> {
        if query.limit == 0 {
            return Err(TableError::Invalid(
                "a query limit must be at least 1".into(),
            ));
        }
        let (mut lower, mut upper) = query_range(query)?;
        if let Some(cursor) = &query.cursor {
            let position = cursor.position_for(query)?;
            let last = index_key(query.index, &position.p, &position.s, &position.k)?;
            if query.forward {
                lower = Bound::Excluded(last);
            } else {
                upper = Bound::Excluded(last);
            }
        }
        let query = query.clone();
        self.reading(query.limit <= INLINE_QUERY_LIMIT, move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let items = txn.open_table(ITEMS).map_err(storage)?;
            let entries = txn.open_table(definition(query.index)).map_err(storage)?;
            let range = (
                lower.as_ref().map(Vec::as_slice),
                upper.as_ref().map(Vec::as_slice),
            );
            let range = entries.range::<&[u8]>(range).map_err(storage)?;
            let mut page = Page::default();
            let step = |entry: Result<
                (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>),
                redb::StorageError,
            >| {
                let (_, value) = entry.map_err(storage)?;
                match query.index {
                    Index::Primary => decode_item(value.value()),
                    _ => read_item(&items, value.value())?.ok_or_else(|| {
                        TableError::Backend("index entry points at a missing item".into())
                    }),
                }
            };
            let mut iter: Box<dyn Iterator<Item = _>> = if query.forward {
                Box::new(range)
            } else {
                Box::new(range.rev())
            };
            for entry in iter.by_ref() {
                let item = step(entry)?;
                if page.items.len() == query.limit {
                    let last = page.items.last().expect("limit is at least 1");
                    let (p, s) = query
                        .index
                        .key_of(last)
                        .expect("queried items carry the index key");
                    page.next = Some(Cursor::encode(&CursorPosition {
                        p,
                        s,
                        k: Key::of(last)?,
                    }));
                    break;
                }
                page.items.push(item);
            }
            Ok(page)
        })
        .await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        let keys = table::validate_write(&ops)?;
        self.committer
            .write(move |txn| match plan(txn, &ops, &keys) {
                // Refused (or unreadable) before anything changed: the batch goes on.
                Err(refused) => Staged::Kept(Err(refused)),
                Ok(changes) => match apply(txn, &changes) {
                    Ok(()) => Staged::Kept(Ok(())),
                    Err(broken) => Staged::Broken(broken),
                },
            })
            .await
    }
}
