//! `DynamoTable`: the Table port on Amazon DynamoDB (aws-sdk-dynamodb; items converted with
//! serde_dynamo).
//!
//! One operation is sent as a plain conditional PutItem/UpdateItem/DeleteItem (cheaper, and it cannot
//! hit transaction conflicts); several as one TransactWriteItems. Queries ask for one item more than
//! the page needs and build the cursor from the last item returned, so pages are exactly full and the
//! last page has no cursor, just like the embedded adapter.

use std::collections::HashMap;

use amanar_core::table::{
    self, Condition, Cursor, CursorPosition, Index, Item, Key, PK, Page, Query, SK, SortKey, Table,
    TableError, Update, VERSION, WriteOp,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put,
    ScalarAttributeType, TransactWriteItem, Update as DynamoUpdate,
};
use serde_json::Value;

type AttributeMap = HashMap<String, AttributeValue>;

/// The Table port backed by one DynamoDB table with GSIs `gsi1` and `gsi2`.
#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table_name: String,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// Creates the table with the same definition as template.yaml (for emulators and tests).
    pub async fn create_table(&self) -> Result<(), TableError> {
        let string = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("complete")
        };
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table_name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range));
        let mut attributes = vec![string(PK), string(SK)];
        for index in [Index::Gsi1, Index::Gsi2] {
            let (p, s) = index.key_attributes();
            attributes.extend([string(p), string(s)]);
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name().expect("GSIs have names"))
                    .key_schema(key(p, KeyType::Hash))
                    .key_schema(key(s, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("complete"),
            );
        }
        request
            .set_attribute_definitions(Some(attributes))
            .send()
            .await
            .map_err(|e| backend_error("CreateTable", e))?;
        Ok(())
    }
}

/// Sorts an SDK failure into the port's errors, so callers (and the HTTP mapping, through
/// [`TableError::is_transient`]) can tell waiting from giving up. The SDK has already retried
/// with backoff by the time an error gets here.
fn backend_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    operation: &str,
    error: SdkError<E, HttpResponse>,
) -> TableError {
    let code = error.code().unwrap_or_default().to_owned();
    if matches!(
        code.as_str(),
        "ThrottlingException" | "ProvisionedThroughputExceededException" | "RequestLimitExceeded"
    ) {
        return TableError::Throttled;
    }
    if code == "TransactionConflictException" || code == "TransactionInProgressException" {
        return TableError::TransactionConflict;
    }
    // Timed out, not reached, cut off mid-answer, or a failure on DynamoDB's side
    // (`InternalServerError`, `ServiceUnavailable`): the same request may work in a moment.
    let unavailable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => error
            .raw_response()
            .is_some_and(|response| response.status().is_server_error()),
        _ => false,
    };
    let message = error
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{error:?}"));
    if unavailable {
        TableError::Unavailable(format!("DynamoDB {operation}: {code} {message}"))
    } else {
        TableError::Backend(format!("DynamoDB {operation} failed: {code} {message}"))
    }
}

fn to_attribute(value: &Value) -> Result<AttributeValue, TableError> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| TableError::Invalid(format!("value cannot be stored: {e}")))
}

fn to_item(item: &Item) -> Result<AttributeMap, TableError> {
    serde_dynamo::to_item(item)
        .map_err(|e| TableError::Invalid(format!("item cannot be stored: {e}")))
}

fn from_item(item: AttributeMap) -> Result<Item, TableError> {
    serde_dynamo::from_item(item)
        .map_err(|e| TableError::Backend(format!("stored item cannot be read: {e}")))
}

fn key_map(key: &Key) -> AttributeMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// Placeholders for one expression: `#n0` for names, `:v0` for values.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: AttributeMap,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn condition(&mut self, conditions: &[Condition]) -> Result<Option<String>, TableError> {
        let mut parts = Vec::with_capacity(conditions.len());
        for condition in conditions {
            parts.push(match condition {
                Condition::NotExists | Condition::VersionIs(0) => {
                    format!("attribute_not_exists({})", self.name(PK))
                }
                Condition::Exists => format!("attribute_exists({})", self.name(PK)),
                Condition::Equals(attribute, value) => {
                    let value = to_attribute(value)?;
                    format!("{} = {}", self.name(attribute), self.value(value))
                }
                Condition::AtLeast(attribute, min) => {
                    format!(
                        "{} >= {}",
                        self.name(attribute),
                        self.value(AttributeValue::N(min.to_string()))
                    )
                }
                Condition::AtMost(attribute, max) => {
                    let name = self.name(attribute);
                    let value = self.value(AttributeValue::N(max.to_string()));
                    if *max >= 0 {
                        format!("(attribute_not_exists({name}) OR {name} <= {value})")
                    } else {
                        format!("{name} <= {value}")
                    }
                }
                Condition::VersionIs(version) => {
                    format!(
                        "{} = {}",
                        self.name(VERSION),
                        self.value(AttributeValue::N(version.to_string()))
                    )
                }
            });
        }
        Ok((!parts.is_empty()).then(|| parts.join(" AND ")))
    }

    fn update(&mut self, update: &Update) -> Result<String, TableError> {
        let mut clauses = Vec::new();
        if !update.set.is_empty() {
            let mut sets = Vec::new();
            for (attribute, value) in &update.set {
                let value = to_attribute(value)?;
                sets.push(format!("{} = {}", self.name(attribute), self.value(value)));
            }
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !update.add.is_empty() {
            let adds: Vec<String> = update
                .add
                .iter()
                .map(|(attribute, delta)| {
                    format!(
                        "{} {}",
                        self.name(attribute),
                        self.value(AttributeValue::N(delta.to_string()))
                    )
                })
                .collect();
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        if !update.remove.is_empty() {
            let removes: Vec<String> = update
                .remove
                .iter()
                .map(|attribute| self.name(attribute))
                .collect();
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        Ok(clauses.join(" "))
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<AttributeMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn transact_item(op: &WriteOp, table_name: &str) -> Result<TransactWriteItem, TableError> {
    let mut expression = Expression::default();
    let condition = expression.condition(op.conditions())?;
    let built = match op {
        WriteOp::Put { item, .. } => TransactWriteItem::builder().put(
            Put::builder()
                .table_name(table_name)
                .set_item(Some(to_item(item)?))
                .set_condition_expression(condition)
                .set_expression_attribute_names(expression.names())
                .set_expression_attribute_values(expression.values())
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        ),
        WriteOp::Update { key, update, .. } => {
            let update_expression = expression.update(update)?;
            TransactWriteItem::builder().update(
                DynamoUpdate::builder()
                    .table_name(table_name)
                    .set_key(Some(key_map(key)))
                    .update_expression(update_expression)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expression.names())
                    .set_expression_attribute_values(expression.values())
                    .build()
                    .map_err(|e| TableError::Invalid(e.to_string()))?,
            )
        }
        WriteOp::Delete { key, .. } => TransactWriteItem::builder().delete(
            Delete::builder()
                .table_name(table_name)
                .set_key(Some(key_map(key)))
                .set_condition_expression(condition)
                .set_expression_attribute_names(expression.names())
                .set_expression_attribute_values(expression.values())
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        ),
        WriteOp::ConditionCheck { key, .. } => TransactWriteItem::builder().condition_check(
            ConditionCheck::builder()
                .table_name(table_name)
                .set_key(Some(key_map(key)))
                .set_condition_expression(condition)
                .set_expression_attribute_names(expression.names())
                .set_expression_attribute_values(expression.values())
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        ),
    };
    Ok(built.build())
}

fn condition_failed(index: usize, key: &Key) -> TableError {
    TableError::ConditionFailed {
        index,
        pk: key.pk.clone(),
        sk: key.sk.clone(),
    }
}

/// Maps the result of a single conditional write.
fn single_write_result<O, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<O, SdkError<E, HttpResponse>>,
    operation: &str,
    key: &Key,
) -> Result<(), TableError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
            Err(condition_failed(0, key))
        }
        Err(e) => Err(backend_error(operation, e)),
    }
}

impl DynamoTable {
    /// One operation without a transaction.
    async fn write_one(&self, op: &WriteOp, key: &Key) -> Result<(), TableError> {
        let mut expression = Expression::default();
        let condition = expression.condition(op.conditions())?;
        match op {
            WriteOp::Put { item, .. } => {
                let result = self
                    .client
                    .put_item()
                    .table_name(&self.table_name)
                    .set_item(Some(to_item(item)?))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expression.names())
                    .set_expression_attribute_values(expression.values())
                    .send()
                    .await;
                single_write_result(result, "PutItem", key)
            }
            WriteOp::Update { update, .. } => {
                let update_expression = expression.update(update)?;
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table_name)
                    .set_key(Some(key_map(key)))
                    .update_expression(update_expression)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expression.names())
                    .set_expression_attribute_values(expression.values())
                    .send()
                    .await;
                single_write_result(result, "UpdateItem", key)
            }
            WriteOp::Delete { .. } => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.table_name)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(expression.names())
                    .set_expression_attribute_values(expression.values())
                    .send()
                    .await;
                single_write_result(result, "DeleteItem", key)
            }
            WriteOp::ConditionCheck { .. } => {
                self.write_transaction(std::slice::from_ref(op), std::slice::from_ref(key))
                    .await
            }
        }
    }

    async fn write_transaction(&self, ops: &[WriteOp], keys: &[Key]) -> Result<(), TableError> {
        let items = ops
            .iter()
            .map(|op| transact_item(op, &self.table_name))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        {
            let codes: Vec<&str> = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
            if let Some(index) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
                return Err(condition_failed(index, &keys[index]));
            }
            if codes.contains(&"TransactionConflict") {
                return Err(TableError::TransactionConflict);
            }
            if codes.iter().any(|c| matches!(*c, "ThrottlingError" | "ProvisionedThroughputExceeded")) {
                return Err(TableError::Throttled);
            }
            return Err(TableError::Backend(format!("transaction cancelled: {codes:?}")));
        }
        Err(backend_error("TransactWriteItems", error))
    }
}

fn cursor_of(index: Index, item: &Item) -> Result<Cursor, TableError> {
    let (p, s) = index
        .key_of(item)
        .ok_or_else(|| TableError::Backend("queried item lacks its index key".into()))?;
    Ok(Cursor::encode(&CursorPosition {
        p,
        s,
        k: Key::of(item)?,
    }))
}

fn start_key(index: Index, position: &CursorPosition) -> AttributeMap {
    let mut key = key_map(&position.k);
    if index != Index::Primary {
        let (p, s) = index.key_attributes();
        key.insert(p.to_owned(), AttributeValue::S(position.p.clone()));
        key.insert(s.to_owned(), AttributeValue::S(position.s.clone()));
    }
    key
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend_error("GetItem", e))?;
        output.item.map(from_item).transpose()
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        if keys.len() > table::MAX_BATCH_GET {
            return Err(TableError::Invalid(format!(
                "batch_get takes at most {} keys",
                table::MAX_BATCH_GET
            )));
        }
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found: HashMap<Key, Item> = HashMap::with_capacity(unique.len());
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(unique.iter().map(|k| key_map(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(|e| TableError::Invalid(e.to_string()))?,
        );
        let mut attempt = 0u32;
        while let Some(request) = pending.take().filter(|r| !r.keys().is_empty()) {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table_name, request)
                .send()
                .await
                .map_err(|e| backend_error("BatchGetItem", e))?;
            for item in output
                .responses
                .unwrap_or_default()
                .remove(&self.table_name)
                .unwrap_or_default()
            {
                let item = from_item(item)?;
                found.insert(Key::of(&item)?, item);
            }
            pending = output
                .unprocessed_keys
                .unwrap_or_default()
                .remove(&self.table_name);
            if pending.is_some() {
                attempt += 1;
                if attempt > 8 {
                    return Err(TableError::Throttled);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6))).await;
            }
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn query(&self, query: &Query) -> Result<Page, TableError> {
        if query.limit == 0 {
            return Err(TableError::Invalid(
                "a query limit must be at least 1".into(),
            ));
        }
        let mut expression = Expression::default();
        let (p, s) = query.index.key_attributes();
        let partition = format!(
            "{} = {}",
            expression.name(p),
            expression.value(AttributeValue::S(query.partition.clone()))
        );
        let sort = query.sort.as_ref().map(|sort| {
            let name = expression.name(s);
            let mut v = |text: &String| expression.value(AttributeValue::S(text.clone()));
            match sort {
                SortKey::Equals(x) => format!("{name} = {}", v(x)),
                SortKey::BeginsWith(x) => format!("begins_with({name}, {})", v(x)),
                SortKey::Between(a, b) => {
                    let a = v(a);
                    format!("{name} BETWEEN {a} AND {}", v(b))
                }
                SortKey::LessThan(x) => format!("{name} < {}", v(x)),
                SortKey::AtMost(x) => format!("{name} <= {}", v(x)),
                SortKey::GreaterThan(x) => format!("{name} > {}", v(x)),
                SortKey::AtLeast(x) => format!("{name} >= {}", v(x)),
            }
        });
        let condition = match sort {
            Some(sort) => format!("{partition} AND {sort}"),
            None => partition,
        };
        let mut start = match &query.cursor {
            Some(cursor) => Some(start_key(query.index, &cursor.position_for(query)?)),
            None => None,
        };
        let mut items: Vec<Item> = Vec::with_capacity(query.limit + 1);
        loop {
            let wanted = (query.limit + 1 - items.len()).min(1000) as i32;
            let output = self
                .client
                .query()
                .table_name(&self.table_name)
                .set_index_name(query.index.name().map(str::to_owned))
                .key_condition_expression(&condition)
                .set_expression_attribute_names(expression.names())
                .set_expression_attribute_values(expression.values())
                .scan_index_forward(query.forward)
                .consistent_read(query.index == Index::Primary)
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend_error("Query", e))?;
            for item in output.items.unwrap_or_default() {
                items.push(from_item(item)?);
            }
            start = output.last_evaluated_key.filter(|k| !k.is_empty());
            if items.len() > query.limit || start.is_none() {
                break;
            }
        }
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            Some(cursor_of(
                query.index,
                items.last().expect("limit is at least 1"),
            )?)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        let keys = table::validate_write(&ops)?;
        if ops.len() == 1 {
            self.write_one(&ops[0], &keys[0]).await
        } else {
            self.write_transaction(&ops, &keys).await
        }
    }
}
