//! Table conformance: the behaviour every Table adapter must show, run unchanged against the embedded
//! adapter and against DynamoDB (through moto). Each case works inside its own namespace, so cases can
//! share one table and run in parallel.

use std::sync::Arc;

use amanar_core::table::{
    Condition, Cursor, CursorPosition, Index, IndexKey, Item, Key, PK, Query, SK, SortKey, Table,
    TableError, Update, WriteOp,
};
use serde_json::{Value, json};

fn item(value: Value) -> Item {
    value.as_object().expect("test items are objects").clone()
}

fn keyed(pk: &str, sk: &str, rest: Value) -> Item {
    let mut item = item(rest);
    item.insert(PK.into(), json!(pk));
    item.insert(SK.into(), json!(sk));
    item
}

async fn put_all(table: &dyn Table, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        table
            .write(chunk.iter().cloned().map(WriteOp::put).collect())
            .await
            .expect("put items");
    }
}

fn sks(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|i| i[SK].as_str().unwrap().to_owned())
        .collect()
}

/// Reads every page of a query, checking each full page holds exactly `limit` items.
async fn all_pages(table: &dyn Table, query: Query) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = table
            .query(&query.clone().after(cursor.clone()))
            .await
            .expect("query");
        pages += 1;
        assert!(page.items.len() <= query.limit);
        let full = page.items.len() == query.limit;
        items.extend(page.items);
        match page.next {
            Some(next) => {
                assert!(full, "only a full page may have a next cursor");
                // Cursors travel through clients as text.
                cursor = Some(Cursor::parse(next.as_str()).expect("cursor parses"));
            }
            None => return (items, pages),
        }
        assert!(pages < 1000, "pagination does not end");
    }
}

pub async fn get_returns_what_put_stored_and_none_for_a_missing_item(table: &dyn Table, ns: &str) {
    let stored = keyed(
        &format!("{ns}#A"),
        "PROFILE",
        json!({"name": "Ada", "count": 3, "tags": ["x", "y"], "nested": {"ok": true}, "none": null}),
    );
    table
        .write(vec![WriteOp::put(stored.clone())])
        .await
        .unwrap();
    assert_eq!(
        table
            .get(&Key::new(format!("{ns}#A"), "PROFILE"))
            .await
            .unwrap(),
        Some(stored)
    );
    assert_eq!(
        table
            .get(&Key::new(format!("{ns}#A"), "OTHER"))
            .await
            .unwrap(),
        None
    );
}

pub async fn batch_get_returns_items_in_the_order_asked_with_gaps(table: &dyn Table, ns: &str) {
    let items: Vec<Item> = (0..30)
        .map(|i| keyed(&format!("{ns}#B{i}"), "X", json!({"n": i})))
        .collect();
    put_all(table, items.clone()).await;
    let mut keys: Vec<Key> = (0..30)
        .rev()
        .map(|i| Key::new(format!("{ns}#B{i}"), "X"))
        .collect();
    keys.insert(5, Key::new(format!("{ns}#missing"), "X"));
    let got = table.batch_get(&keys).await.unwrap();
    assert_eq!(got.len(), 31);
    assert_eq!(got[5], None);
    assert_eq!(got[0].as_ref().unwrap()["n"], json!(29));
    assert_eq!(got[30].as_ref().unwrap()["n"], json!(0));
}

pub async fn queries_narrow_by_sort_key_in_both_directions(table: &dyn Table, ns: &str) {
    let pk = format!("{ns}#Q");
    let names = ["a", "b", "ba", "bb", "bz", "c", "d"];
    put_all(
        table,
        names.iter().map(|s| keyed(&pk, s, json!({}))).collect(),
    )
    .await;
    put_all(table, vec![keyed(&format!("{pk}X"), "b", json!({}))]).await;
    let run = |sort: Option<SortKey>, forward: bool| {
        let mut query = Query::partition(Index::Primary, pk.clone());
        query.sort = sort;
        query.forward = forward;
        async move { sks(&table.query(&query).await.unwrap().items) }
    };
    assert_eq!(run(None, true).await, names);
    assert_eq!(
        run(None, false).await,
        names.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(run(Some(SortKey::Equals("b".into())), true).await, ["b"]);
    assert_eq!(
        run(Some(SortKey::BeginsWith("b".into())), true).await,
        ["b", "ba", "bb", "bz"]
    );
    assert_eq!(
        run(Some(SortKey::BeginsWith("b".into())), false).await,
        ["bz", "bb", "ba", "b"]
    );
    assert_eq!(
        run(Some(SortKey::Between("b".into(), "bz".into())), true).await,
        ["b", "ba", "bb", "bz"]
    );
    assert_eq!(run(Some(SortKey::LessThan("b".into())), true).await, ["a"]);
    assert_eq!(
        run(Some(SortKey::AtMost("b".into())), true).await,
        ["a", "b"]
    );
    assert_eq!(
        run(Some(SortKey::GreaterThan("bz".into())), true).await,
        ["c", "d"]
    );
    assert_eq!(
        run(Some(SortKey::AtLeast("bz".into())), false).await,
        ["d", "c", "bz"]
    );
    assert!(
        run(Some(SortKey::Equals("zzz".into())), true)
            .await
            .is_empty()
    );
}

pub async fn pages_follow_an_opaque_cursor_without_gaps_or_repeats(table: &dyn Table, ns: &str) {
    let pk = format!("{ns}#P");
    let expected: Vec<String> = (0..25).map(|i| format!("ITEM#{i:03}")).collect();
    put_all(
        table,
        expected
            .iter()
            .map(|s| keyed(&pk, s, json!({"payload": "x".repeat(100)})))
            .collect(),
    )
    .await;
    let (items, pages) = all_pages(
        table,
        Query::partition(Index::Primary, pk.clone()).limit(10),
    )
    .await;
    assert_eq!(sks(&items), expected);
    assert_eq!(pages, 3);
    let (items, _) = all_pages(
        table,
        Query::partition(Index::Primary, pk.clone())
            .limit(7)
            .backward(),
    )
    .await;
    assert_eq!(
        sks(&items),
        expected.iter().rev().cloned().collect::<Vec<_>>()
    );
    let (items, pages) = all_pages(
        table,
        Query::partition(Index::Primary, pk.clone()).limit(25),
    )
    .await;
    assert_eq!(
        (items.len(), pages),
        (25, 1),
        "an exactly full last page has no next cursor"
    );
    let (items, _) = all_pages(
        table,
        Query::partition(Index::Primary, pk)
            .sort(SortKey::BeginsWith("ITEM#01".into()))
            .limit(4),
    )
    .await;
    assert_eq!(items.len(), 10);
}

pub async fn a_cursor_is_refused_on_another_partition(table: &dyn Table, ns: &str) {
    let pk = format!("{ns}#C");
    put_all(
        table,
        (0..3)
            .map(|i| keyed(&pk, &i.to_string(), json!({})))
            .collect(),
    )
    .await;
    let page = table
        .query(&Query::partition(Index::Primary, pk.clone()).limit(1))
        .await
        .unwrap();
    let cursor = page.next.expect("more items follow");
    let foreign = Query::partition(Index::Primary, format!("{ns}#OTHER")).after(Some(cursor));
    assert_eq!(
        table.query(&foreign).await.unwrap_err(),
        TableError::InvalidCursor
    );
    // A cursor edited to name this partition but start at another's key reads nothing of either.
    let victim = format!("{ns}#VICTIM");
    put_all(table, vec![keyed(&victim, "0", json!({"secret": true}))]).await;
    let forged = Cursor::encode(&CursorPosition {
        p: pk.clone(),
        s: "0".into(),
        k: Key::new(&victim, "0"),
    });
    let own = Query::partition(Index::Primary, pk.clone()).after(Some(forged));
    assert_eq!(
        table.query(&own).await.unwrap_err(),
        TableError::InvalidCursor
    );
}

pub async fn secondary_indexes_list_items_by_their_own_keys(table: &dyn Table, ns: &str) {
    let owner = format!("{ns}#OWNER");
    // Three items share one GSI sort key: ties are broken by the base key, and pages cut through them.
    let mut items: Vec<Item> = (0..5)
        .map(|i| {
            let mut item = keyed(&format!("{ns}#ORDER{i}"), "ORDER", json!({}));
            IndexKey::new(Index::Gsi1, &owner, format!("2026-0{}", i.min(2)))
                .insert_into(&mut item);
            IndexKey::new(Index::Gsi2, format!("{ns}#STATUS#open"), i.to_string())
                .insert_into(&mut item);
            item
        })
        .collect();
    items.push(keyed(
        &format!("{ns}#ORDER9"),
        "ORDER",
        json!({"note": "not in any index"}),
    ));
    put_all(table, items).await;
    let (listed, _) = all_pages(table, Query::partition(Index::Gsi1, owner.clone()).limit(2)).await;
    let pks: Vec<_> = listed
        .iter()
        .map(|i| i[PK].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = (0..5).map(|i| format!("{ns}#ORDER{i}")).collect();
    assert_eq!(pks, expected);
    let (listed, _) = all_pages(
        table,
        Query::partition(Index::Gsi1, owner.clone())
            .backward()
            .limit(2),
    )
    .await;
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[0][PK], json!(format!("{ns}#ORDER4")));
    let recent = table
        .query(
            &Query::partition(Index::Gsi1, owner.clone()).sort(SortKey::AtLeast("2026-02".into())),
        )
        .await
        .unwrap();
    assert_eq!(recent.items.len(), 3);
    let between = table
        .query(
            &Query::partition(Index::Gsi2, format!("{ns}#STATUS#open"))
                .sort(SortKey::Between("1".into(), "3".into())),
        )
        .await
        .unwrap();
    assert_eq!(between.items.len(), 3);

    // Moving an item in the index (its partition attribute changes) and out of it (one of its key
    // attributes removed is enough).
    let (gsi2pk, _) = Index::Gsi2.key_attributes();
    table
        .write(vec![WriteOp::update(
            Key::new(format!("{ns}#ORDER0"), "ORDER"),
            Update::new().set(gsi2pk, format!("{ns}#STATUS#closed")),
        )])
        .await
        .unwrap();
    table
        .write(vec![WriteOp::update(
            Key::new(format!("{ns}#ORDER1"), "ORDER"),
            Update::new().remove(gsi2pk),
        )])
        .await
        .unwrap();
    let open = table
        .query(&Query::partition(Index::Gsi2, format!("{ns}#STATUS#open")))
        .await
        .unwrap();
    assert_eq!(open.items.len(), 3);
    let closed = table
        .query(&Query::partition(
            Index::Gsi2,
            format!("{ns}#STATUS#closed"),
        ))
        .await
        .unwrap();
    assert_eq!(closed.items.len(), 1);
    assert_eq!(
        closed.items[0][gsi2pk],
        json!(format!("{ns}#STATUS#closed"))
    );
    // Deleted items leave the index.
    table
        .write(vec![WriteOp::delete(Key::new(
            format!("{ns}#ORDER4"),
            "ORDER",
        ))])
        .await
        .unwrap();
    assert_eq!(
        table
            .query(&Query::partition(Index::Gsi1, owner))
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

pub async fn conditions_guard_creation_equality_counters_and_versions(table: &dyn Table, ns: &str) {
    let key = Key::new(format!("{ns}#COND"), "X");
    let create = || {
        WriteOp::put(keyed(
            &key.pk,
            &key.sk,
            json!({"status": "open", "stock": 5, "version": 1}),
        ))
        .when(Condition::NotExists)
    };
    table.write(vec![create()]).await.unwrap();
    assert!(matches!(
        table.write(vec![create()]).await,
        Err(TableError::ConditionFailed { index: 0, .. })
    ));

    let set_status = |from: &str, to: &str| {
        WriteOp::update(key.clone(), Update::new().set("status", to))
            .when(Condition::Equals("status".into(), json!(from)))
    };
    assert!(matches!(
        table.write(vec![set_status("closed", "x")]).await,
        Err(TableError::ConditionFailed { .. })
    ));
    table.write(vec![set_status("open", "held")]).await.unwrap();

    let take = |n: i64| {
        WriteOp::update(key.clone(), Update::new().add("stock", -n))
            .when(Condition::AtLeast("stock".into(), n))
    };
    table.write(vec![take(5)]).await.unwrap();
    assert!(matches!(
        table.write(vec![take(1)]).await,
        Err(TableError::ConditionFailed { .. })
    ));

    // A cap on a counter that starts from nothing: the missing item counts as 0.
    let capped = Key::new(format!("{ns}#CAPPED"), "X");
    let count = || {
        WriteOp::update(capped.clone(), Update::new().add("n", 1))
            .when(Condition::AtMost("n".into(), 1))
    };
    table.write(vec![count()]).await.unwrap();
    table.write(vec![count()]).await.unwrap();
    assert!(matches!(
        table.write(vec![count()]).await,
        Err(TableError::ConditionFailed { index: 0, .. })
    ));
    assert_eq!(table.get(&capped).await.unwrap().unwrap()["n"], json!(2));

    let bump = |v: u64| {
        WriteOp::update(key.clone(), Update::new().add("version", 1)).when(Condition::VersionIs(v))
    };
    assert!(matches!(
        table.write(vec![bump(7)]).await,
        Err(TableError::ConditionFailed { .. })
    ));
    table.write(vec![bump(1)]).await.unwrap();
    let stored = table.get(&key).await.unwrap().unwrap();
    assert_eq!(
        (
            stored["status"].clone(),
            stored["stock"].clone(),
            stored["version"].clone()
        ),
        (json!("held"), json!(0), json!(2))
    );

    let missing = Key::new(format!("{ns}#COND"), "MISSING");
    assert!(matches!(
        table
            .write(vec![WriteOp::check(missing.clone(), Condition::Exists)])
            .await,
        Err(TableError::ConditionFailed { .. })
    ));
    table
        .write(vec![WriteOp::check(missing, Condition::NotExists)])
        .await
        .unwrap();
    table
        .write(vec![
            WriteOp::put(keyed(&format!("{ns}#COND"), "NEW", json!({"version": 1})))
                .when(Condition::VersionIs(0)),
        ])
        .await
        .unwrap();
}

pub async fn a_failed_condition_names_its_operation_and_writes_nothing(
    table: &dyn Table,
    ns: &str,
) {
    let a = keyed(&format!("{ns}#TX"), "A", json!({"v": 1}));
    let stock = Key::new(format!("{ns}#TX"), "STOCK");
    table
        .write(vec![WriteOp::put(keyed(
            &stock.pk,
            &stock.sk,
            json!({"left": 1}),
        ))])
        .await
        .unwrap();
    let result = table
        .write(vec![
            WriteOp::put(a.clone()),
            WriteOp::update(Key::new(format!("{ns}#TX"), "B"), Update::new().set("v", 2)),
            WriteOp::update(stock.clone(), Update::new().add("left", -2))
                .when(Condition::AtLeast("left".into(), 2)),
            WriteOp::delete(Key::new(format!("{ns}#TX"), "C")),
        ])
        .await;
    match result {
        Err(TableError::ConditionFailed { index, pk, sk }) => assert_eq!(
            (index, pk.as_str(), sk.as_str()),
            (2, stock.pk.as_str(), "STOCK")
        ),
        other => panic!("expected a failed condition, got {other:?}"),
    }
    assert_eq!(
        table.get(&Key::new(format!("{ns}#TX"), "A")).await.unwrap(),
        None
    );
    assert_eq!(
        table.get(&Key::new(format!("{ns}#TX"), "B")).await.unwrap(),
        None
    );
    assert_eq!(table.get(&stock).await.unwrap().unwrap()["left"], json!(1));
}

pub async fn a_write_applies_up_to_a_hundred_operations_together(table: &dyn Table, ns: &str) {
    let ops: Vec<WriteOp> = (0..100)
        .map(|i| WriteOp::put(keyed(&format!("{ns}#MANY"), &format!("{i:03}"), json!({}))))
        .collect();
    table.write(ops).await.unwrap();
    let page = table
        .query(&Query::partition(Index::Primary, format!("{ns}#MANY")).limit(100))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 100);
    let too_many: Vec<WriteOp> = (0..101)
        .map(|i| WriteOp::put(keyed(&format!("{ns}#MANY2"), &i.to_string(), json!({}))))
        .collect();
    assert!(matches!(
        table.write(too_many).await,
        Err(TableError::Invalid(_))
    ));
    let twice = vec![
        WriteOp::put(keyed(&format!("{ns}#DUP"), "X", json!({}))),
        WriteOp::delete(Key::new(format!("{ns}#DUP"), "X")),
    ];
    assert!(matches!(
        table.write(twice).await,
        Err(TableError::Invalid(_))
    ));
}

pub async fn updates_create_missing_items_and_deletes_are_conditional(table: &dyn Table, ns: &str) {
    let key = Key::new(format!("{ns}#UPD"), "COUNTER");
    table
        .write(vec![WriteOp::update(
            key.clone(),
            Update::new().add("hits", 3).set("name", "c"),
        )])
        .await
        .unwrap();
    table
        .write(vec![WriteOp::update(
            key.clone(),
            Update::new().add("hits", 2).remove("name"),
        )])
        .await
        .unwrap();
    assert_eq!(
        Value::Object(table.get(&key).await.unwrap().unwrap()),
        json!({PK: key.pk, SK: "COUNTER", "hits": 5})
    );
    let guarded = WriteOp::delete(key.clone()).when(Condition::Equals("hits".into(), json!(4)));
    assert!(matches!(
        table.write(vec![guarded]).await,
        Err(TableError::ConditionFailed { .. })
    ));
    table
        .write(vec![
            WriteOp::delete(key.clone()).when(Condition::Equals("hits".into(), json!(5))),
        ])
        .await
        .unwrap();
    assert_eq!(table.get(&key).await.unwrap(), None);
    // Deleting what is not there is not an error.
    table.write(vec![WriteOp::delete(key)]).await.unwrap();
}

/// Many concurrent conditional decrements of one counter: it never goes below zero and exactly as
/// many succeed as the counter started with.
pub async fn concurrent_conditional_decrements_never_oversell(table: Arc<dyn Table>, ns: &str) {
    const STOCK: i64 = 40;
    const BUYERS: usize = 100;
    let key = Key::new(format!("{ns}#STOCK"), "LISTING");
    table
        .write(vec![WriteOp::put(keyed(
            &key.pk,
            &key.sk,
            json!({"available": STOCK}),
        ))])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for buyer in 0..BUYERS {
        let table = table.clone();
        let key = key.clone();
        let ns = ns.to_owned();
        tasks.push(tokio::spawn(async move {
            // Each purchase decrements the stock and records the sale in one transaction.
            let ops = || {
                vec![
                    WriteOp::update(key.clone(), Update::new().add("available", -1))
                        .when(Condition::AtLeast("available".into(), 1)),
                    WriteOp::put(keyed(
                        &format!("{ns}#SALE"),
                        &format!("{buyer:03}"),
                        json!({}),
                    ))
                    .when(Condition::NotExists),
                ]
            };
            loop {
                match table.write(ops()).await {
                    Ok(()) => return true,
                    Err(TableError::ConditionFailed { index: 0, .. }) => return false,
                    Err(e) if e.is_transient() => {
                        tokio::time::sleep(std::time::Duration::from_millis(5 + buyer as u64 % 20))
                            .await
                    }
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    let mut sold = 0;
    for task in tasks {
        if task.await.unwrap() {
            sold += 1;
        }
    }
    assert_eq!(sold, STOCK);
    assert_eq!(
        table.get(&key).await.unwrap().unwrap()["available"],
        json!(0)
    );
    let (sales, _) = all_pages(
        &*table,
        Query::partition(Index::Primary, format!("{ns}#SALE")).limit(100),
    )
    .await;
    assert_eq!(sales.len() as i64, STOCK);
}

/// The accounts lockout over this table: 30 parallel wrong guesses for one subject are counted
/// exactly, whatever the interleaving. Four pass under the limit, one takes the last slot and
/// locks, and the other 25 are refused without being checked.
pub async fn parallel_attempts_lock_after_exactly_the_limit(table: Arc<dyn Table>, ns: &str) {
    use amanar_accounts::lockout::{Counted, LOGIN, Lockout};
    use amanar_accounts::service::AccountsError;
    let lockout = Lockout::new(table, Arc::new(amanar_core::SystemClock));
    let key = Key::new(format!("{ns}#LOGIN"), "FAILURES");
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (lockout, key) = (lockout.clone(), key.clone());
            tokio::spawn(async move { lockout.count_attempt(&key, LOGIN).await })
        })
        .collect();
    let (mut under, mut locking, mut refused) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(Counted::UnderLimit) => under += 1,
            Ok(Counted::NowLocked) => locking += 1,
            Err(AccountsError::Locked { retry_after_secs }) => {
                assert!(retry_after_secs > 0 && retry_after_secs <= LOGIN.lock_secs as u64);
                refused += 1
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(
        (under, locking, refused),
        (LOGIN.failures - 1, 1, 30 - LOGIN.failures)
    );
}

/// The accounts audit log over this table: 30 parallel appends to one log all land, in one
/// unbroken chain (a lost race retries; it is never a lost entry or an error).
pub async fn parallel_audit_appends_all_land_in_one_chain(table: Arc<dyn Table>, ns: &str) {
    use amanar_accounts::audit::{Audit, AuditEvent, chain_is_intact};
    let audit = Audit::new(table, Arc::new(amanar_core::SystemClock));
    let user = format!("{ns}-user");
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (audit, user) = (audit.clone(), user.clone());
            tokio::spawn(async move {
                audit
                    .record(&[&user], None, AuditEvent::new(&user, "auth.login_failed"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("every append lands");
    }
    let stream = amanar_core::keys::audit_stream_user(&user);
    let (mut entries, next) = audit.list(&stream, 100, None).await.unwrap();
    assert!(next.is_none());
    entries.reverse();
    assert_eq!(entries.len(), 30);
    assert!(chain_is_intact(&entries));
}

/// Declares one `#[tokio::test]` per table conformance case. `$table` is an async expression giving
/// an `Arc<dyn Table>` (it may be shared: cases use their own namespaces).
#[macro_export]
macro_rules! table_conformance_tests {
    ($table:expr) => {
        $crate::table_conformance_tests!(@cases $table;
            get_returns_what_put_stored_and_none_for_a_missing_item,
            batch_get_returns_items_in_the_order_asked_with_gaps,
            queries_narrow_by_sort_key_in_both_directions,
            pages_follow_an_opaque_cursor_without_gaps_or_repeats,
            a_cursor_is_refused_on_another_partition,
            secondary_indexes_list_items_by_their_own_keys,
            conditions_guard_creation_equality_counters_and_versions,
            a_failed_condition_names_its_operation_and_writes_nothing,
            a_write_applies_up_to_a_hundred_operations_together,
            updates_create_missing_items_and_deletes_are_conditional
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn concurrent_conditional_decrements_never_oversell() {
            let table: std::sync::Arc<dyn amanar_core::table::Table> = $table.await;
            $crate::table::concurrent_conditional_decrements_never_oversell(table, &$crate::namespace()).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn parallel_attempts_lock_after_exactly_the_limit() {
            let table: std::sync::Arc<dyn amanar_core::table::Table> = $table.await;
            $crate::table::parallel_attempts_lock_after_exactly_the_limit(table, &$crate::namespace()).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn parallel_audit_appends_all_land_in_one_chain() {
            let table: std::sync::Arc<dyn amanar_core::table::Table> = $table.await;
            $crate::table::parallel_audit_appends_all_land_in_one_chain(table, &$crate::namespace()).await;
        }
    };
    (@cases $table:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let table: std::sync::Arc<dyn amanar_core::table::Table> = $table.await;
                $crate::table::$case(&*table, &$crate::namespace()).await;
            }
        )*
    };
}
