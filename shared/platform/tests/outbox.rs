//! The transactional outbox on the embedded adapters: a message written with its change is sent
//! once right after it; one whose sender died before sending is sent by housekeeping once it is
//! stale, and only then.

mod common;

use std::time::Duration;

use amanar_core::messages::{JobMessage, NotificationKind, Notify, Recipient};
use amanar_core::table::{Key, WriteOp};
use amanar_core::{Ports, QueueName, outbox};
use common::ports;

fn notice(event: &str) -> Notify {
    Notify {
        event: event.into(),
        kind: NotificationKind::ProjectStatusChanged,
        recipient: Recipient::User("usr_1".into()),
        title: "Your project is approved".into(),
        body: "Approved.".into(),
        link: None,
        at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
    }
}

/// A change and its message in one write: the item `key` and the outbox entry of `event`.
async fn change_with_message(ports: &Ports, key: &str, event: &str) {
    let item =
        amanar_core::table::items::with_key(&Key::new(key, "CHANGE"), &serde_json::json!({}))
            .unwrap();
    let staged = outbox::stage(
        QueueName::Notifications,
        &notice(event),
        event,
        ports.clock.now(),
    )
    .unwrap();
    ports
        .table
        .write(vec![WriteOp::put(item), staged])
        .await
        .unwrap();
}

async fn waiting(ports: &Ports) -> Vec<String> {
    let got = ports
        .queue
        .receive(
            QueueName::Notifications,
            10,
            Duration::from_secs(60),
            Duration::ZERO,
        )
        .await
        .unwrap();
    for m in &got {
        ports
            .queue
            .delete(QueueName::Notifications, &m.receipt)
            .await
            .unwrap();
    }
    got.into_iter().map(|m| m.body).collect()
}

#[tokio::test]
async fn a_message_written_with_its_change_is_sent_once_by_its_sender_or_by_the_sweeper() {
    let (ports, clock) = ports();
    let run = amanar_platform::outbox::RESEND.run;

    // The sender sends it right after the write; nothing is left for the sweeper.
    change_with_message(&ports, "CHANGE#1", "evt-1").await;
    outbox::send(&*ports.table, &*ports.queue, &outbox::id("evt-1"))
        .await
        .unwrap();
    assert_eq!(waiting(&ports).await, [notice("evt-1").to_body()]);
    outbox::send(&*ports.table, &*ports.queue, &outbox::id("evt-1"))
        .await
        .unwrap();
    clock.advance(outbox::STALE_AFTER * 2);
    assert_eq!(run(&ports).await, Ok(0));
    assert!(waiting(&ports).await.is_empty(), "sent once");

    // The sender died after the write: the sweeper leaves it while it is fresh, then sends it.
    change_with_message(&ports, "CHANGE#2", "evt-2").await;
    assert_eq!(run(&ports).await, Ok(0));
    assert!(waiting(&ports).await.is_empty());
    clock.advance(outbox::STALE_AFTER + chrono::TimeDelta::seconds(1));
    assert_eq!(run(&ports).await, Ok(1));
    assert_eq!(waiting(&ports).await, [notice("evt-2").to_body()]);
    assert_eq!(run(&ports).await, Ok(0), "and only once");
    assert!(waiting(&ports).await.is_empty());
}

#[tokio::test]
async fn a_message_no_queue_takes_is_given_up_and_does_not_hold_up_the_ones_behind_it() {
    use amanar_core::table::Update;
    let (ports, clock) = ports();
    let run = amanar_platform::outbox::RESEND.run;
    change_with_message(&ports, "CHANGE#gone", "evt-gone").await;
    let gone = amanar_core::keys::outbox(&outbox::id("evt-gone"));
    ports
        .table
        .write(vec![WriteOp::update(
            gone.clone(),
            Update::new().set("queue", "renamed-long-ago"),
        )])
        .await
        .unwrap();
    clock.advance(chrono::TimeDelta::seconds(1));
    change_with_message(&ports, "CHANGE#next", "evt-next").await;
    clock.advance(outbox::STALE_AFTER * 2);

    assert_eq!(run(&ports).await, Ok(2), "one given up, one sent");
    assert_eq!(waiting(&ports).await, [notice("evt-next").to_body()]);
    let kept = ports
        .table
        .get(&gone)
        .await
        .unwrap()
        .expect("kept for an operator");
    assert_eq!(kept["status"], "undeliverable");
    assert!(
        kept["reason"]
            .as_str()
            .unwrap()
            .contains("renamed-long-ago")
    );
    clock.advance(outbox::STALE_AFTER * 2);
    assert_eq!(run(&ports).await, Ok(0), "out of the sweeper's sight");
}
