//! The workflow mechanism (`amanar_core::workflow`) on a real table: transitions are conditional
//! and versioned, unfinished records stay indexed until final, and a sweep reads every page within
//! its limit and budget and nudges records out of sight for a period.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::table::{Table, WriteOp, items};
use amanar_core::workflow::{Flow, Status, SweepPolicy, Verdict};
use amanar_core::{Key, Query, Update};
use amanar_embedded::EmbeddedStore;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Open,
    Working,
    Done,
}

impl Status for Step {
    fn value(self) -> &'static str {
        match self {
            Step::Open => "open",
            Step::Working => "working",
            Step::Done => "done",
        }
    }
    fn is_final(self) -> bool {
        self == Step::Done
    }
}

const FLOW: Flow = Flow {
    name: "test record",
    open: "TESTS#open",
};

fn key(id: &str) -> Key {
    Key::new(format!("TEST#{id}"), "TEST")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

fn table() -> (Arc<dyn Table>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    (Arc::new(store.table), dir)
}

async fn create(table: &dyn Table, id: &str, status: Step, at: DateTime<Utc>) {
    let mut item = items::with_key(&key(id), &json!({"id": id, "status": status.value()})).unwrap();
    FLOW.start(&mut item, id, status, at);
    table.write(vec![WriteOp::put(item)]).await.unwrap();
}

async fn open_ids(table: &dyn Table) -> Vec<String> {
    let page = table
        .query(&Query::partition(amanar_core::Index::Gsi2, FLOW.open).limit(1000))
        .await
        .unwrap();
    page.items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

const POLICY: SweepPolicy = SweepPolicy {
    stale_after: TimeDelta::minutes(10),
    limit: 1000,
    budget: Duration::from_secs(30),
};

#[tokio::test]
async fn a_move_applies_only_from_the_status_it_names_and_bumps_the_version() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Open, t0()).await;
    let first = FLOW.transition(
        key("a"),
        "a",
        Step::Open,
        Step::Working,
        Update::new(),
        t0(),
    );
    let second = FLOW.transition(key("a"), "a", Step::Open, Step::Done, Update::new(), t0());
    assert!(Flow::apply(&*table, first).await.unwrap());
    assert!(
        !Flow::apply(&*table, second).await.unwrap(),
        "the record already left `open`"
    );
    let item = table.get(&key("a")).await.unwrap().unwrap();
    assert_eq!(item["status"], json!("working"));
    assert_eq!(item["version"], json!(2));
}

#[tokio::test]
async fn of_concurrent_moves_from_one_status_exactly_one_wins() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Open, t0()).await;
    let moves = (0..8).map(|_| {
        let table = table.clone();
        tokio::spawn(async move {
            let op = FLOW.transition(
                key("a"),
                "a",
                Step::Open,
                Step::Working,
                Update::new(),
                t0(),
            );
            Flow::apply(&*table, op).await.unwrap()
        })
    });
    let mut won = 0;
    for handle in moves {
        won += usize::from(handle.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn a_record_stays_in_the_open_index_until_its_final_move() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Open, t0()).await;
    create(&*table, "b", Step::Done, t0()).await;
    assert_eq!(
        open_ids(&*table).await,
        ["a"],
        "a record born final is never open"
    );
    let working = FLOW.transition(
        key("a"),
        "a",
        Step::Open,
        Step::Working,
        Update::new(),
        t0(),
    );
    Flow::apply(&*table, working).await.unwrap();
    assert_eq!(open_ids(&*table).await, ["a"]);
    let done = FLOW.transition(
        key("a"),
        "a",
        Step::Working,
        Step::Done,
        Update::new(),
        t0(),
    );
    Flow::apply(&*table, done).await.unwrap();
    assert!(open_ids(&*table).await.is_empty());
}

#[tokio::test]
async fn a_sweep_visits_every_stale_record_past_the_first_page_and_none_that_moved_lately() {
    let (table, _dir) = table();
    for n in 0..250 {
        create(&*table, &format!("old{n:03}"), Step::Open, t0()).await;
    }
    create(&*table, "fresh", Step::Open, t0() + TimeDelta::minutes(55)).await;
    let now = t0() + TimeDelta::hours(1);
    let mut seen = Vec::new();
    let report = FLOW
        .sweep(&*table, now, POLICY, |item| {
            seen.push(item["id"].as_str().unwrap().to_owned());
            async { Ok(Verdict::Waiting) }
        })
        .await
        .unwrap();
    assert_eq!(report.visited, 250);
    assert_eq!(seen.len(), 250);
    assert!(!seen.contains(&"fresh".to_owned()));

    let limited = FLOW
        .sweep(
            &*table,
            now,
            SweepPolicy {
                limit: 120,
                ..POLICY
            },
            |_| async { Ok(Verdict::Waiting) },
        )
        .await
        .unwrap();
    assert_eq!(limited.visited, 120, "a sweep reads at most its limit");
}

#[tokio::test]
async fn a_sweep_stops_at_its_budget_and_counts_failed_visits_without_stopping() {
    let (table, _dir) = table();
    for n in 0..5 {
        create(&*table, &format!("r{n}"), Step::Open, t0()).await;
    }
    let now = t0() + TimeDelta::hours(1);
    let mut calls = 0;
    let report = FLOW
        .sweep(&*table, now, POLICY, |_| {
            calls += 1;
            let fail = calls % 2 == 0;
            async move {
                if fail {
                    Err(amanar_core::TableError::Unavailable("flaky".into()))
                } else {
                    Ok(Verdict::GaveUp)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!((report.visited, report.gave_up, report.failed), (5, 3, 2));

    let out_of_time = FLOW
        .sweep(
            &*table,
            now,
            SweepPolicy {
                budget: Duration::ZERO,
                ..POLICY
            },
            |_| async { Ok(Verdict::Waiting) },
        )
        .await
        .unwrap();
    assert!(out_of_time.out_of_budget);
    assert!(out_of_time.visited < 5);
}

#[tokio::test]
async fn a_nudge_is_counted_and_hides_the_record_for_another_period() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Working, t0()).await;
    let now = t0() + TimeDelta::hours(1);
    let report = FLOW
        .sweep(&*table, now, POLICY, |item| {
            let table = table.clone();
            async move {
                let id = item["id"].as_str().unwrap().to_owned();
                let nudge = FLOW.nudge(key(&id), &id, Step::Working, now);
                Flow::apply(&*table, nudge).await?;
                Ok(Verdict::Nudged)
            }
        })
        .await
        .unwrap();
    assert_eq!(report.nudged, 1);
    let item = table.get(&key("a")).await.unwrap().unwrap();
    assert_eq!(Flow::sweeps(&item), 1);
    assert_eq!(item["status"], json!("working"));
    let again = FLOW
        .sweep(&*table, now + TimeDelta::minutes(5), POLICY, |_| async {
            Ok(Verdict::Nudged)
        })
        .await
        .unwrap();
    assert_eq!(again.visited, 0, "out of sight until it is stale again");
    let later = FLOW
        .sweep(&*table, now + TimeDelta::minutes(11), POLICY, |_| async {
            Ok(Verdict::Waiting)
        })
        .await
        .unwrap();
    assert_eq!(later.visited, 1);
}

#[tokio::test]
async fn a_move_decided_from_an_earlier_read_loses_to_any_move_in_between() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Working, t0()).await;
    let seen = table.get(&key("a")).await.unwrap().unwrap();
    // Progress is written meanwhile: same status, new version.
    let progress = FLOW.transition(
        key("a"),
        "a",
        Step::Working,
        Step::Working,
        Update::new(),
        t0(),
    );
    assert!(Flow::apply(&*table, progress).await.unwrap());
    let give_up = FLOW.transition(
        key("a"),
        "a",
        Step::Working,
        Step::Done,
        Update::new().set("reason", "stuck"),
        t0(),
    );
    assert!(
        !Flow::apply(&*table, Flow::as_seen(give_up, &seen))
            .await
            .unwrap()
    );
    let item = table.get(&key("a")).await.unwrap().unwrap();
    assert_eq!(
        item["status"],
        json!("working"),
        "the live record was not given up on"
    );
}

#[tokio::test]
async fn of_concurrent_nudges_from_one_read_exactly_one_applies() {
    let (table, _dir) = table();
    create(&*table, "a", Step::Working, t0()).await;
    let seen = table.get(&key("a")).await.unwrap().unwrap();
    let nudges = (0..8).map(|_| {
        let (table, seen) = (table.clone(), seen.clone());
        tokio::spawn(async move {
            let nudge = FLOW.nudge(key("a"), "a", Step::Working, t0());
            Flow::apply(&*table, Flow::as_seen(nudge, &seen))
                .await
                .unwrap()
        })
    });
    let mut applied = 0;
    for handle in nudges {
        applied += usize::from(handle.await.unwrap());
    }
    assert_eq!(applied, 1);
    let item = table.get(&key("a")).await.unwrap().unwrap();
    assert_eq!(Flow::sweeps(&item), 1);
}
