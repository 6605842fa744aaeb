//! The Table port: a narrow, DynamoDB-shaped single-table item store.
//!
//! Every repository in the product is written once on top of this trait, so the key design lives in
//! one place and the embedded and DynamoDB adapters behave identically (one conformance suite runs
//! against both). Invariants are enforced with conditions inside all-or-nothing writes, never with
//! read-then-write.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One stored item: a JSON object holding at least the string attributes `pk` and `sk`.
pub type Item = Map<String, Value>;

/// Partition-key attribute of the base table.
pub const PK: &str = "pk";
/// Sort-key attribute of the base table.
pub const SK: &str = "sk";
/// Attribute holding an item's expiry as epoch seconds (DynamoDB TTL; readers must still check it,
/// because expired items linger until the backend removes them).
pub const EXPIRES_AT: &str = "expiresAt";
/// Attribute used by [`Condition::VersionIs`] for optimistic concurrency.
pub const VERSION: &str = "version";
/// Most operations allowed in one [`Table::write`], as in DynamoDB `TransactWriteItems`.
pub const MAX_WRITE_OPS: usize = 100;
/// Largest item, as DynamoDB allows it (400 KB). Both adapters refuse a larger put the same way;
/// the size is measured as the item's JSON, which is never smaller than DynamoDB's own count.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Most keys in one [`Table::batch_get`] call made by a caller; adapters page further as needed.
pub const MAX_BATCH_GET: usize = 100;

/// Primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// Reads the primary key of a stored item.
    pub fn of(item: &Item) -> Result<Self, TableError> {
        match (item.get(PK), item.get(SK)) {
            (Some(Value::String(pk)), Some(Value::String(sk)))
                if !pk.is_empty() && !sk.is_empty() =>
            {
                Ok(Self::new(pk.clone(), sk.clone()))
            }
            _ => Err(TableError::Invalid(
                "item must have non-empty string attributes pk and sk".into(),
            )),
        }
    }
}

/// The indexes a query may use: the base table and two overloaded global secondary indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

impl Index {
    pub const ALL: [Index; 3] = [Index::Primary, Index::Gsi1, Index::Gsi2];

    /// Name of the index as declared in the table definition (`None` for the base table).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Index::Primary => None,
            Index::Gsi1 => Some("gsi1"),
            Index::Gsi2 => Some("gsi2"),
        }
    }

    /// Attribute names of the index's partition and sort keys.
    pub fn key_attributes(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (PK, SK),
            Index::Gsi1 => ("gsi1pk", "gsi1sk"),
            Index::Gsi2 => ("gsi2pk", "gsi2sk"),
        }
    }

    /// The item's key in this index, if it is projected into it (both attributes are strings).
    pub fn key_of(self, item: &Item) -> Option<(String, String)> {
        let (p, s) = self.key_attributes();
        match (item.get(p), item.get(s)) {
            (Some(Value::String(p)), Some(Value::String(s))) => Some((p.clone(), s.clone())),
            _ => None,
        }
    }
}

/// Where an item is listed in a secondary index. The GSIs are sparse: an item is in one exactly
/// while it holds both of the index's key attributes, so listing and unlisting an item is setting
/// and removing them ([`IndexKey::insert_into`], [`Update::set_index`], [`Update::remove_index`]).
/// The product's items get theirs from [`crate::keys`]; callers never name the attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    pub index: Index,
    pub pk: String,
    pub sk: String,
}

impl IndexKey {
    /// # Panics
    /// On [`Index::Primary`]: an item's base-table key is its [`Key`], not an index entry.
    pub fn new(index: Index, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        assert!(
            index != Index::Primary,
            "an index key names a secondary index"
        );
        Self {
            index,
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// Lists the item under this key in its index.
    pub fn insert_into(&self, item: &mut Item) {
        let (p, s) = self.index.key_attributes();
        item.insert(p.into(), Value::String(self.pk.clone()));
        item.insert(s.into(), Value::String(self.sk.clone()));
    }
}

/// Condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Equals(String),
    BeginsWith(String),
    /// Inclusive on both ends.
    Between(String, String),
    LessThan(String),
    AtMost(String),
    GreaterThan(String),
    AtLeast(String),
}

/// A query: one partition of one index, optionally narrowed by a sort-key condition.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort: Option<SortKey>,
    /// `true` for ascending sort-key order.
    pub forward: bool,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Query {
    pub fn partition(index: Index, partition: impl Into<String>) -> Self {
        Self {
            index,
            partition: partition.into(),
            sort: None,
            forward: true,
            limit: 100,
            cursor: None,
        }
    }
    pub fn sort(mut self, sort: SortKey) -> Self {
        self.sort = Some(sort);
        self
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of query results; `next` is set when more items may follow.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// Position after the last item of a page. Opaque to callers; the encoded form is URL-safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// What a cursor carries: the last item's keys in the queried index and in the base table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPosition {
    /// Index partition the cursor belongs to; a cursor is refused on any other partition.
    pub p: String,
    /// Index sort key of the last item.
    pub s: String,
    /// Base-table key of the last item (ties within a GSI are broken by it).
    pub k: Key,
}

impl Cursor {
    pub fn encode(position: &CursorPosition) -> Self {
        let json = serde_json::to_vec(position).expect("cursor positions always serialise");
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses a cursor a client sent back. Any tampering shows up as [`TableError::InvalidCursor`].
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let cursor = Self(text.to_owned());
        cursor.position()?;
        Ok(cursor)
    }

    pub fn position(&self) -> Result<CursorPosition, TableError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| TableError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| TableError::InvalidCursor)
    }

    /// Position, checked to belong to `query`: its partition, its sort-key condition and, on the
    /// base table, a key inside that partition. A cursor is base64 JSON that a client can edit, so
    /// nothing in it may start a read outside the partition the caller was allowed to query (the
    /// embedded table's range starts at the cursor's key) or reach the backend as a key it refuses
    /// (DynamoDB's `ValidationException` on a foreign start key would be a 500).
    pub fn position_for(&self, query: &Query) -> Result<CursorPosition, TableError> {
        let position = self.position()?;
        // DynamoDB's key limits: 2,048 bytes for a partition key, 1,024 for a sort key.
        let usable =
            |text: &str, max: usize| !text.is_empty() && text.len() <= max && !text.contains('\0');
        let inside = position.p == query.partition
            && usable(&position.s, 1024)
            && usable(&position.k.pk, 2048)
            && usable(&position.k.sk, 1024)
            && (query.index != Index::Primary
                || (position.k.pk == position.p && position.k.sk == position.s))
            && sort_key_matches(query.sort.as_ref(), &position.s);
        if inside {
            Ok(position)
        } else {
            Err(TableError::InvalidCursor)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A condition an item must meet for a write to apply. Conditions on one operation are ANDed.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The item does not exist (guards uniqueness and "create once").
    NotExists,
    /// The item exists.
    Exists,
    /// The attribute exists and equals the value.
    Equals(String, Value),
    /// The numeric attribute exists and is at least the given value (guards counters and stock).
    AtLeast(String, i64),
    /// The numeric attribute is at most the given value, a missing one (or item) counting as 0
    /// (caps counters that start from nothing).
    AtMost(String, i64),
    /// The item's `version` attribute equals the value (optimistic concurrency);
    /// version 0 means the item does not exist yet.
    VersionIs(u64),
}

/// Changes an update makes, applied in order: set, then add, then remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Vec<(String, Value)>,
    /// Atomic counter increments (negative to decrement); a missing attribute counts as 0.
    pub add: Vec<(String, i64)>,
    pub remove: Vec<String>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, attribute: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set.push((attribute.into(), value.into()));
        self
    }
    pub fn add(mut self, attribute: impl Into<String>, delta: i64) -> Self {
        self.add.push((attribute.into(), delta));
        self
    }
    pub fn remove(mut self, attribute: impl Into<String>) -> Self {
        self.remove.push(attribute.into());
        self
    }
    /// Lists the item under `key` in its index (or moves it there).
    pub fn set_index(self, key: IndexKey) -> Self {
        let (p, s) = key.index.key_attributes();
        self.set(p, key.pk).set(s, key.sk)
    }
    /// Takes the item out of a secondary index.
    pub fn remove_index(self, index: Index) -> Self {
        let (p, s) = index.key_attributes();
        self.remove(p).remove(s)
    }

    /// Checks the update touches no key attribute and names each attribute once.
    pub fn validate(&self) -> Result<(), TableError> {
        let mut seen = std::collections::HashSet::new();
        let names = self
            .set
            .iter()
            .map(|(a, _)| a)
            .chain(self.add.iter().map(|(a, _)| a))
            .chain(self.remove.iter());
        for name in names {
            if name == PK || name == SK {
                return Err(TableError::Invalid(
                    "an update cannot change pk or sk".into(),
                ));
            }
            if name.is_empty() {
                return Err(TableError::Invalid(
                    "attribute names cannot be empty".into(),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(TableError::Invalid(format!(
                    "attribute {name} appears twice in one update"
                )));
            }
        }
        if self.set.is_empty() && self.add.is_empty() && self.remove.is_empty() {
            return Err(TableError::Invalid(
                "an update must change something".into(),
            ));
        }
        Ok(())
    }

    /// Applies the update to an item in memory (creating it from the key when absent), exactly as
    /// DynamoDB's `SET`, `ADD` and `REMOVE` do.
    pub fn apply(&self, key: &Key, current: Option<Item>) -> Result<Item, TableError> {
        let mut item = current.unwrap_or_else(|| {
            let mut item = Item::new();
            item.insert(PK.into(), Value::String(key.pk.clone()));
            item.insert(SK.into(), Value::String(key.sk.clone()));
            item
        });
        for (name, value) in &self.set {
            item.insert(name.clone(), value.clone());
        }
        for (name, delta) in &self.add {
            let current = match item.get(name) {
                None => 0,
                Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                    TableError::Invalid(format!("attribute {name} is not an integer counter"))
                })?,
                Some(_) => {
                    return Err(TableError::Invalid(format!(
                        "attribute {name} is not a number"
                    )));
                }
            };
            let next = current
                .checked_add(*delta)
                .ok_or_else(|| TableError::Invalid(format!("counter {name} would overflow")))?;
            item.insert(name.clone(), Value::from(next));
        }
        for name in &self.remove {
            item.remove(name);
        }
        Ok(item)
    }
}

/// One operation of an all-or-nothing write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        item: Item,
        conditions: Vec<Condition>,
    },
    Update {
        key: Key,
        update: Update,
        conditions: Vec<Condition>,
    },
    Delete {
        key: Key,
        conditions: Vec<Condition>,
    },
    ConditionCheck {
        key: Key,
        conditions: Vec<Condition>,
    },
}

impl WriteOp {
    pub fn put(item: Item) -> Self {
        WriteOp::Put {
            item,
            conditions: Vec::new(),
        }
    }
    pub fn update(key: Key, update: Update) -> Self {
        WriteOp::Update {
            key,
            update,
            conditions: Vec::new(),
        }
    }
    pub fn delete(key: Key) -> Self {
        WriteOp::Delete {
            key,
            conditions: Vec::new(),
        }
    }
    pub fn check(key: Key, condition: Condition) -> Self {
        WriteOp::ConditionCheck {
            key,
            conditions: vec![condition],
        }
    }

    /// Adds a condition the item must meet for the whole write to apply.
    pub fn when(mut self, condition: Condition) -> Self {
        match &mut self {
            WriteOp::Put { conditions, .. }
            | WriteOp::Update { conditions, .. }
            | WriteOp::Delete { conditions, .. }
            | WriteOp::ConditionCheck { conditions, .. } => conditions.push(condition),
        }
        self
    }

    pub fn key(&self) -> Result<Key, TableError> {
        match self {
            WriteOp::Put { item, .. } => Key::of(item),
            WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. }
            | WriteOp::ConditionCheck { key, .. } => Ok(key.clone()),
        }
    }

    pub fn conditions(&self) -> &[Condition] {
        match self {
            WriteOp::Put { conditions, .. }
            | WriteOp::Update { conditions, .. }
            | WriteOp::Delete { conditions, .. }
            | WriteOp::ConditionCheck { conditions, .. } => conditions,
        }
    }
}

/// Checks a batch of operations before any backend sees it, so both adapters reject the same things.
pub fn validate_write(ops: &[WriteOp]) -> Result<Vec<Key>, TableError> {
    if ops.is_empty() {
        return Err(TableError::Invalid(
            "a write needs at least one operation".into(),
        ));
    }
    if ops.len() > MAX_WRITE_OPS {
        return Err(TableError::Invalid(format!(
            "a write holds at most {MAX_WRITE_OPS} operations, got {}",
            ops.len()
        )));
    }
    let mut keys = Vec::with_capacity(ops.len());
    let mut seen = std::collections::HashSet::with_capacity(ops.len());
    for op in ops {
        let key = op.key()?;
        if key.pk.is_empty() || key.sk.is_empty() {
            return Err(TableError::Invalid("pk and sk cannot be empty".into()));
        }
        if !seen.insert(key.clone()) {
            return Err(TableError::Invalid(format!(
                "item {}/{} appears twice in one write",
                key.pk, key.sk
            )));
        }
        match op {
            WriteOp::Update { update, .. } => update.validate()?,
            WriteOp::ConditionCheck { conditions, .. } if conditions.is_empty() => {
                return Err(TableError::Invalid(
                    "a condition check needs a condition".into(),
                ));
            }
            WriteOp::Put { item, .. } => {
                let size = serde_json::to_vec(item).map_or(usize::MAX, |json| json.len());
                if size > MAX_ITEM_BYTES {
                    return Err(TableError::Invalid(format!(
                        "item {}/{} is {size} bytes; an item holds at most {MAX_ITEM_BYTES}",
                        key.pk, key.sk
                    )));
                }
                for index in [Index::Gsi1, Index::Gsi2] {
                    let (p, s) = index.key_attributes();
                    for attribute in [p, s] {
                        if matches!(item.get(attribute), Some(v) if !v.is_string()) {
                            return Err(TableError::Invalid(format!(
                                "{attribute} must be a string"
                            )));
                        }
                    }
                }
            }
            _ => {}
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Evaluates conditions against the current item, in memory. The embedded adapter uses this inside
/// its write transaction; the DynamoDB adapter translates the same conditions to expressions.
pub fn conditions_hold(conditions: &[Condition], item: Option<&Item>) -> bool {
    conditions.iter().all(|condition| match condition {
        Condition::NotExists => item.is_none(),
        Condition::Exists => item.is_some(),
        Condition::Equals(name, value) => item
            .and_then(|i| i.get(name))
            .is_some_and(|v| json_equal(v, value)),
        Condition::AtLeast(name, min) => item
            .and_then(|i| i.get(name))
            .and_then(Value::as_i64)
            .is_some_and(|v| v >= *min),
        Condition::AtMost(name, max) => match item.and_then(|i| i.get(name)) {
            None => 0 <= *max,
            Some(v) => v.as_i64().is_some_and(|v| v <= *max),
        },
        Condition::VersionIs(0) => item.is_none(),
        Condition::VersionIs(version) => item
            .and_then(|i| i.get(VERSION))
            .and_then(Value::as_u64)
            .is_some_and(|v| v == *version),
    })
}

/// Equality as DynamoDB sees it: numbers compare by value, not by representation.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// Whether a sort key satisfies a query's sort condition.
pub fn sort_key_matches(condition: Option<&SortKey>, sk: &str) -> bool {
    match condition {
        None => true,
        Some(SortKey::Equals(v)) => sk == v,
        Some(SortKey::BeginsWith(p)) => sk.starts_with(p.as_str()),
        Some(SortKey::Between(a, b)) => sk >= a.as_str() && sk <= b.as_str(),
        Some(SortKey::LessThan(v)) => sk < v.as_str(),
        Some(SortKey::AtMost(v)) => sk <= v.as_str(),
        Some(SortKey::GreaterThan(v)) => sk > v.as_str(),
        Some(SortKey::AtLeast(v)) => sk >= v.as_str(),
    }
}

/// Errors a table operation can end in. Callers branch on the first variants; the others carry
/// context for the log. [`TableError::is_transient`] says which are worth retrying.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TableError {
    /// A condition did not hold; nothing was written. `index` is the failed operation's position.
    #[error("condition failed on operation {index} ({pk}/{sk})")]
    ConditionFailed {
        index: usize,
        pk: String,
        sk: String,
    },
    /// Another write touched the same items at the same time; nothing was written. Safe to retry.
    #[error("write conflicted with a concurrent transaction")]
    TransactionConflict,
    /// The backend refused for load; nothing was written. Retry with backoff.
    #[error("throttled by the table backend")]
    Throttled,
    /// The backend could not be reached, did not answer in time or answered that it failed on its
    /// side (a 5xx). A write's outcome is unknown: it may have applied, so a client retries with
    /// the same idempotency key.
    #[error("table backend unavailable: {0}")]
    Unavailable(String),
    /// A pagination cursor that this table did not issue for this query.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The request itself is malformed (a programming error in the caller).
    #[error("invalid table request: {0}")]
    Invalid(String),
    /// The backend failed in a way waiting does not cure: a stored item it cannot read back, an
    /// index entry pointing at a missing item, a crashed worker, a local storage error.
    #[error("table backend failed: {0}")]
    Backend(String),
}

impl TableError {
    /// Whether retrying the same request later may succeed. This is the one classification every
    /// caller uses (retry loops; the HTTP mapping, which answers 503 with `Retry-After` exactly for
    /// these and 500 for the rest):
    ///
    /// - transient: [`TransactionConflict`](Self::TransactionConflict) (the other write is over
    ///   soon), [`Throttled`](Self::Throttled) (load passes) and
    ///   [`Unavailable`](Self::Unavailable) (timeouts, unreachable or failing backend);
    /// - not transient: [`ConditionFailed`](Self::ConditionFailed) (the same write meets the same
    ///   state: a decision for the caller), [`InvalidCursor`](Self::InvalidCursor) and
    ///   [`Invalid`](Self::Invalid) (the request itself is wrong), and
    ///   [`Backend`](Self::Backend) (corrupt data or a broken store stays broken).
    pub fn is_transient(&self) -> bool {
        match self {
            TableError::TransactionConflict
            | TableError::Throttled
            | TableError::Unavailable(_) => true,
            TableError::ConditionFailed { .. }
            | TableError::InvalidCursor
            | TableError::Invalid(_)
            | TableError::Backend(_) => false,
        }
    }
}

/// The single-table item store.
#[async_trait]
pub trait Table: Send + Sync + 'static {
    /// Reads one item by primary key (strongly consistent).
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;

    /// Reads up to [`MAX_BATCH_GET`] items; the result is in the order of `keys`.
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError>;

    /// Queries one partition of an index.
    async fn query(&self, query: &Query) -> Result<Page, TableError>;

    /// Applies all operations or none. Fails with [`TableError::ConditionFailed`] naming the first
    /// operation whose condition did not hold.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), TableError>;
}

/// Convenience helpers over any [`Table`].
pub mod items {
    use super::*;

    /// Builds an item from a key and a serialisable body (a struct with `camelCase` fields).
    pub fn with_key(key: &Key, body: &impl Serialize) -> Result<Item, TableError> {
        let mut item =
            match serde_json::to_value(body).map_err(|e| TableError::Invalid(e.to_string()))? {
                Value::Object(map) => map,
                _ => {
                    return Err(TableError::Invalid(
                        "an item body must serialise to an object".into(),
                    ));
                }
            };
        item.insert(PK.into(), Value::String(key.pk.clone()));
        item.insert(SK.into(), Value::String(key.sk.clone()));
        Ok(item)
    }

    /// Reads a stored item back into a typed value (unknown attributes such as keys are ignored).
    pub fn parse<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, TableError> {
        serde_json::from_value(Value::Object(item))
            .map_err(|e| TableError::Backend(format!("stored item has an unexpected shape: {e}")))
    }

    /// A query page's items as typed values, with the cursor of the next page.
    pub fn parse_page<T: for<'de> Deserialize<'de>>(
        page: Page,
    ) -> Result<(Vec<T>, Option<Cursor>), TableError> {
        let parsed = page
            .items
            .into_iter()
            .map(parse)
            .collect::<Result<_, _>>()?;
        Ok((parsed, page.next))
    }

    /// Every item a query matches, reading page after page.
    pub async fn query_all(table: &dyn Table, query: &Query) -> Result<Vec<Item>, TableError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = table.query(&query.clone().after(cursor)).await?;
            all.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Every item a query finds, across all its pages, each read into a typed value.
    pub async fn query_all_as<T: for<'de> Deserialize<'de>>(
        table: &dyn Table,
        query: &Query,
    ) -> Result<Vec<T>, TableError> {
        query_all(table, query)
            .await?
            .into_iter()
            .map(parse)
            .collect()
    }

    /// Reads one item by key into a typed value, `None` when there is none.
    pub async fn load<T: for<'de> Deserialize<'de>>(
        table: &dyn Table,
        key: &Key,
    ) -> Result<Option<T>, TableError> {
        table.get(key).await?.map(parse).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_cursor_round_trips_and_is_refused_on_another_partition() {
        let position = CursorPosition {
            p: "USER#1".into(),
            s: "ORDER#2".into(),
            k: Key::new("USER#1", "ORDER#2"),
        };
        let cursor = Cursor::encode(&position);
        let parsed = Cursor::parse(cursor.as_str()).unwrap();
        let orders =
            Query::partition(Index::Primary, "USER#1").sort(SortKey::BeginsWith("ORDER#".into()));
        assert_eq!(parsed.position_for(&orders).unwrap(), position);
        let other_user = Query::partition(Index::Primary, "USER#2");
        assert_eq!(
            parsed.position_for(&other_user),
            Err(TableError::InvalidCursor)
        );
        let invoices =
            Query::partition(Index::Primary, "USER#1").sort(SortKey::BeginsWith("INVOICE#".into()));
        assert_eq!(
            parsed.position_for(&invoices),
            Err(TableError::InvalidCursor)
        );
        // Forged: the right partition, but a base key in another (where the embedded table's
        // range would start), or a key the backend refuses.
        for forged in [
            CursorPosition {
                k: Key::new("USER#2", "ORDER#2"),
                ..position.clone()
            },
            CursorPosition {
                k: Key::new("USER#1", "ORDER#3"),
                ..position.clone()
            },
            CursorPosition {
                s: "ORDER#\0".into(),
                k: Key::new("USER#1", "ORDER#\0"),
                ..position.clone()
            },
            CursorPosition {
                s: format!("ORDER#{}", "9".repeat(1024)),
                k: Key::new("USER#1", format!("ORDER#{}", "9".repeat(1024))),
                ..position.clone()
            },
        ] {
            let cursor = Cursor::encode(&forged);
            assert_eq!(
                cursor.position_for(&orders),
                Err(TableError::InvalidCursor),
                "{forged:?}"
            );
        }
        let by_gsi = Query::partition(Index::Gsi1, "USER#1");
        assert!(
            parsed.position_for(&by_gsi).is_ok(),
            "a GSI's base key is any item's"
        );
        assert_eq!(
            Cursor::parse("not base64 !").unwrap_err(),
            TableError::InvalidCursor
        );
        assert_eq!(Cursor::parse("e30").unwrap_err(), TableError::InvalidCursor);
    }

    #[test]
    fn an_update_sets_adds_and_removes_like_dynamodb() {
        let key = Key::new("A", "B");
        let current = item(json!({"pk": "A", "sk": "B", "stock": 5, "old": true}));
        let next = Update::new()
            .set("name", "x")
            .add("stock", -2)
            .add("sold", 2)
            .remove("old")
            .apply(&key, Some(current))
            .unwrap();
        assert_eq!(
            Value::Object(next),
            json!({"pk": "A", "sk": "B", "stock": 3, "sold": 2, "name": "x"})
        );
    }

    #[test]
    fn conditions_compare_numbers_by_value() {
        let current = item(json!({"pk": "A", "sk": "B", "stock": 5, "version": 3}));
        assert!(conditions_hold(
            &[Condition::AtLeast("stock".into(), 5)],
            Some(&current)
        ));
        assert!(!conditions_hold(
            &[Condition::AtLeast("stock".into(), 6)],
            Some(&current)
        ));
        assert!(conditions_hold(
            &[Condition::Equals("stock".into(), json!(5.0))],
            Some(&current)
        ));
        assert!(conditions_hold(&[Condition::VersionIs(3)], Some(&current)));
        assert!(conditions_hold(&[Condition::VersionIs(0)], None));
        assert!(!conditions_hold(
            &[Condition::AtLeast("missing".into(), 0)],
            Some(&current)
        ));
    }

    #[test]
    fn a_write_naming_one_item_twice_or_holding_too_many_operations_is_refused() {
        let put = WriteOp::put(item(json!({"pk": "A", "sk": "B"})));
        assert!(matches!(
            validate_write(&[put.clone(), put.clone()]),
            Err(TableError::Invalid(_))
        ));
        let many: Vec<_> = (0..101)
            .map(|i| WriteOp::put(item(json!({"pk": "A", "sk": i.to_string()}))))
            .collect();
        assert!(matches!(validate_write(&many), Err(TableError::Invalid(_))));
        assert!(matches!(validate_write(&[]), Err(TableError::Invalid(_))));
    }

    #[test]
    fn only_conflicts_throttling_and_an_unavailable_backend_are_worth_retrying() {
        let transient = [
            TableError::TransactionConflict,
            TableError::Throttled,
            TableError::Unavailable("timed out".into()),
        ];
        let lasting = [
            TableError::ConditionFailed {
                index: 0,
                pk: "A".into(),
                sk: "B".into(),
            },
            TableError::InvalidCursor,
            TableError::Invalid("bad request".into()),
            TableError::Backend("stored item is corrupt".into()),
        ];
        assert!(transient.iter().all(TableError::is_transient));
        assert!(!lasting.iter().any(TableError::is_transient));
    }

    #[test]
    fn an_index_key_names_a_secondary_index() {
        let primary = std::panic::catch_unwind(|| IndexKey::new(Index::Primary, "A", "B"));
        assert!(primary.is_err());
    }

    #[test]
    fn an_item_larger_than_dynamodb_allows_is_refused_before_any_backend_sees_it() {
        let big = "x".repeat(MAX_ITEM_BYTES);
        let put = WriteOp::put(item(json!({"pk": "A", "sk": "B", "blob": big})));
        assert!(
            matches!(validate_write(&[put]), Err(TableError::Invalid(m)) if m.contains("at most"))
        );
    }
}
