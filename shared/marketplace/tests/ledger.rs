//! The credit ledger on both faces: the embedded table and DynamoDB on moto run the same cases,
//! concurrency included; a property test drives random movements through the embedded face.

use std::collections::BTreeMap;
use std::sync::Arc;

use amanar_core::table::{Condition, Key, Table, WriteOp};
use amanar_marketplace::ledger::{
    Account, Ledger, LedgerError, NewIssuance, Transfer, check_blocks,
};
use amanar_marketplace::serial::{self, Range, Standard, Vintage};
use amanar_testkit::namespace;
use chrono::Utc;

use amanar_testkit::both_faces;

use amanar_testkit::tables::embedded;

const DEVELOPER: &str = "ORG#org_dev";

/// A native issuance of `quantity` credits (serials 1..=quantity) in a namespace of its own.
fn native(quantity: u64, buffer: u64) -> NewIssuance {
    let id = format!("iss_{}", namespace());
    NewIssuance {
        serial: serial::parse(Standard::Native, &format!("AMC-{id}-1-{quantity}")).unwrap(),
        id,
        project_id: "prj_1".into(),
        vintage: Vintage::Year(2024),
        buffer,
        inventory_owner: DEVELOPER.into(),
        issued_by: "USER#usr_verifier".into(),
        issued_at: Utc::now(),
    }
}

fn inventory() -> Account {
    Account::Inventory(DEVELOPER.into())
}

/// A movement with an id of its own.
fn to(from: Account, to: Account, quantity: u64, issuance: &str) -> Transfer {
    Transfer {
        id: format!("mv_{}", namespace()),
        from,
        to,
        quantity,
        issuance: issuance.into(),
    }
}

async fn assert_whole(ledger: &Ledger, issuance_id: &str) -> BTreeMap<Account, u64> {
    let issuance = ledger.issuance(issuance_id).await.unwrap().unwrap();
    let blocks = ledger.blocks(issuance_id).await.unwrap();
    check_blocks(&issuance, &blocks)
        .unwrap_or_else(|e| panic!("invariant broken: {e}: {blocks:?}"));
    let mut balances = BTreeMap::new();
    for block in blocks {
        *balances.entry(block.account).or_insert(0) += block.range.len();
    }
    balances
}

async fn an_issuance_is_its_inventory_and_its_buffer_covering_the_range(table: Arc<dyn Table>) {
    let ledger = Ledger::new(table);
    let issuance = ledger.issue(native(1000, 150)).await.unwrap();
    let blocks = ledger.blocks(&issuance.id).await.unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].range, Range::new(1, 850).unwrap());
    assert_eq!(blocks[0].account, inventory());
    assert_eq!(blocks[1].range, Range::new(851, 1000).unwrap());
    assert_eq!(blocks[1].account, Account::Buffer);
    assert_eq!(
        ledger
            .balance(&Account::Buffer, Some(&issuance.id))
            .await
            .unwrap(),
        150
    );
    let again = ledger.issue(native(10, 0)).await.unwrap();
    assert_eq!(
        ledger.blocks(&again.id).await.unwrap().len(),
        1,
        "no buffer block when none is withheld"
    );
}

async fn a_claim_overlapping_another_in_its_namespace_is_refused(table: Arc<dyn Table>) {
    let ledger = Ledger::new(table);
    // Verra numbers credits across the registry: one namespace for every Verra issuance.
    // Each run of this binary has a table of its own, so fixed numbers do not collide.
    let batch = 941_000_000;
    let verra = |first: u64, last: u64| {
        serial::parse(
            Standard::Vcs,
            &format!("19385-{first}-{last}-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"),
        )
        .unwrap()
    };
    let mut first = native(1, 0);
    first.serial = verra(batch + 100, batch + 199);
    ledger.issue(first).await.unwrap();
    for (a, b) in [
        (batch + 150, batch + 250),
        (batch + 50, batch + 100),
        (batch + 120, batch + 130),
        (batch, batch + 1000),
    ] {
        let mut overlapping = native(1, 0);
        overlapping.serial = verra(a, b);
        let error = ledger.issue(overlapping).await.unwrap_err();
        assert!(
            matches!(error, LedgerError::Overlap { .. }),
            "{a}-{b}: {error:?}"
        );
    }
    let mut next = native(1, 0);
    next.serial = verra(batch + 200, batch + 299);
    ledger
        .issue(next)
        .await
        .expect("the adjacent range is free");

    // Two claims of overlapping ranges at once: exactly one lands.
    let (mut x, mut y) = (native(1, 0), native(1, 0));
    x.serial = verra(batch + 400, batch + 499);
    y.serial = verra(batch + 450, batch + 549);
    let (a, b) = tokio::join!(ledger.issue(x), ledger.issue(y));
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} / {b:?}");
    let lost = if a.is_ok() { b } else { a };
    assert!(matches!(lost, Err(LedgerError::Overlap { .. })), "{lost:?}");

    // The same range again under another spelling of the same credits: a leading zero.
    let mut alias = native(1, 0);
    alias.serial = verra(batch + 100, batch + 199);
    alias.serial.range = Range::new(batch + 100, batch + 199).unwrap();
    assert!(
        serial::parse(
            Standard::Vcs,
            &format!(
                "19385-0{}-{}-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
                batch + 100,
                batch + 199
            )
        )
        .is_err()
    );
}

async fn transfers_split_blocks_and_final_accounts_never_move(table: Arc<dyn Table>) {
    let ledger = Ledger::new(table);
    let issuance = ledger.issue(native(100, 0)).await.unwrap();
    let id = issuance.id.as_str();
    let listing = Account::Listing("lst_1".into());
    let moved = ledger
        .transfer(&to(inventory(), listing.clone(), 40, id), &[])
        .await
        .unwrap();
    assert_eq!(
        moved[0].range,
        Range::new(1, 40).unwrap(),
        "lowest serials first"
    );
    let reserved = Account::Reserved("ord_1".into());
    ledger
        .transfer(&to(listing.clone(), reserved.clone(), 15, id), &[])
        .await
        .unwrap();
    let retired = Account::Retired("ret_1".into());
    let moved = ledger
        .transfer(&to(reserved.clone(), retired.clone(), 15, id), &[])
        .await
        .unwrap();
    assert_eq!(moved[0].range, Range::new(1, 15).unwrap());
    let balances = assert_whole(&ledger, id).await;
    assert_eq!(balances[&inventory()], 60);
    assert_eq!(
        ledger.balance(&listing, None).await.unwrap(),
        25,
        "without an issuance filter"
    );
    assert_eq!(balances[&listing], 25);
    assert_eq!(balances[&retired], 15);
    assert!(!balances.contains_key(&reserved));

    let error = ledger
        .transfer(&to(retired.clone(), inventory(), 1, id), &[])
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::Final(_)), "{error:?}");
    let cancelled = Account::Cancelled("cnl_1".into());
    ledger
        .transfer(&to(inventory(), cancelled.clone(), 5, id), &[])
        .await
        .unwrap();
    let error = ledger
        .transfer(&to(cancelled, inventory(), 1, id), &[])
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::Final(_)), "{error:?}");
    let error = ledger
        .transfer(&to(inventory(), listing.clone(), 0, id), &[])
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::Invalid(_)), "{error:?}");
    let error = ledger
        .transfer(
            &to(inventory(), Account::Listing(String::new()), 1, id),
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, LedgerError::Invalid(_)),
        "an empty account id: {error:?}"
    );
    let error = ledger
        .transfer(&to(listing.clone(), reserved.clone(), 26, id), &[])
        .await
        .unwrap_err();
    assert_eq!(
        error,
        LedgerError::Insufficient {
            available: 25,
            requested: 26
        }
    );
    let error = ledger
        .transfer(&to(inventory(), Account::Buffer, 1, id), &[])
        .await
        .unwrap_err();
    assert_eq!(error, LedgerError::IntoBuffer);

    // Serial lookup: the block that holds a number, and its account.
    let (found, block) = ledger
        .locate(&issuance.serial.namespace, 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(block.account, retired);
    let (_, block) = ledger
        .locate(&issuance.serial.namespace, 16)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block.account, listing);
    assert!(
        ledger
            .locate(&issuance.serial.namespace, 101)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_movement_is_made_once_under_its_id_and_an_issuance_once_under_its_id(
    table: Arc<dyn Table>,
) {
    let ledger = Ledger::new(table);
    let new = native(50, 0);
    let issuance = ledger.issue(new.clone()).await.unwrap();
    let again = ledger
        .issue(new.clone())
        .await
        .expect("issuing the same again returns it");
    assert_eq!(again, issuance);
    let mut other = new.clone();
    other.project_id = "prj_other".into();
    assert_eq!(
        ledger.issue(other).await.unwrap_err(),
        LedgerError::AlreadyIssued(issuance.id.clone())
    );

    let listing = Account::Listing("lst_once".into());
    let once = to(inventory(), listing.clone(), 20, &issuance.id);
    let first = ledger.transfer(&once, &[]).await.unwrap();
    let replay = ledger
        .transfer(&once, &[])
        .await
        .expect("a replay answers what moved");
    assert_eq!(
        replay.iter().map(|b| b.range).collect::<Vec<_>>(),
        first.iter().map(|b| b.range).collect::<Vec<_>>()
    );
    assert_eq!(
        ledger.balance(&listing, Some(&issuance.id)).await.unwrap(),
        20,
        "moved once"
    );
    let mut reused = once.clone();
    reused.quantity = 21;
    assert_eq!(
        ledger.transfer(&reused, &[]).await.unwrap_err(),
        LedgerError::MovementReused(once.id.clone())
    );
}

async fn a_failed_guard_of_the_caller_writes_nothing(table: Arc<dyn Table>) {
    let ledger = Ledger::new(table.clone());
    let issuance = ledger.issue(native(10, 0)).await.unwrap();
    let guard = WriteOp::check(
        Key::new(format!("GUARD#{}", namespace()), "X"),
        Condition::Exists,
    );
    let error = ledger
        .transfer(
            &to(
                inventory(),
                Account::Listing("lst_g".into()),
                4,
                &issuance.id,
            ),
            &[guard],
        )
        .await
        .unwrap_err();
    assert_eq!(error, LedgerError::Guard { index: 0 });
    let balances = assert_whole(&ledger, &issuance.id).await;
    assert_eq!(balances[&inventory()], 10);
}

async fn fifty_concurrent_reservations_from_one_block_never_over_allocate(table: Arc<dyn Table>) {
    let ledger = Ledger::new(table);
    let issuance = ledger.issue(native(100, 0)).await.unwrap();
    let listing = Account::Listing("lst_hot".into());
    ledger
        .transfer(&to(inventory(), listing.clone(), 100, &issuance.id), &[])
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let ledger = ledger.clone();
            let transfer = to(
                listing.clone(),
                Account::Reserved(format!("ord_{i}")),
                3,
                &issuance.id,
            );
            tokio::spawn(async move { ledger.transfer(&transfer, &[]).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(moved) => {
                assert_eq!(moved.iter().map(|b| b.range.len()).sum::<u64>(), 3);
                won += 1;
            }
            Err(LedgerError::Insufficient { available, .. }) => assert!(available < 3),
            Err(other) => panic!("a reservation ended in {other:?}"),
        }
    }
    assert_eq!(
        won, 33,
        "100 credits hold 33 reservations of 3, no more and no fewer"
    );
    let balances = assert_whole(&ledger, &issuance.id).await;
    assert_eq!(balances[&listing], 1);
    let reserved: u64 = balances
        .iter()
        .filter(|(a, _)| matches!(a, Account::Reserved(_)))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(reserved, 99);
}

both_faces!(
    an_issuance_is_its_inventory_and_its_buffer_covering_the_range,
    a_claim_overlapping_another_in_its_namespace_is_refused,
    transfers_split_blocks_and_final_accounts_never_move,
    a_failed_guard_of_the_caller_writes_nothing,
    a_movement_is_made_once_under_its_id_and_an_issuance_once_under_its_id,
    fifty_concurrent_reservations_from_one_block_never_over_allocate,
);

mod property {
    use super::*;
    use proptest::prelude::*;

    fn accounts() -> Vec<Account> {
        vec![
            inventory(),
            Account::Listing("lst_a".into()),
            Account::Listing("lst_b".into()),
            Account::Reserved("ord_a".into()),
            Account::Holding("USER#usr_buyer".into()),
            Account::Frozen("dsp_a".into()),
            Account::Retired("ret_a".into()),
            Account::Cancelled("cnl_a".into()),
            Account::Buffer,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Random splits, transfers, reservations, retirements and cancellations keep every
        /// invariant, and each account holds what a plain count says it should.
        #[test]
        fn random_movements_keep_every_invariant(
            quantity in 1u64..400,
            buffer_share in 0u64..30,
            steps in proptest::collection::vec((0usize..9, 0usize..9, 1u64..120), 1..24),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let ledger = Ledger::new(embedded());
                let buffer = quantity * buffer_share / 100;
                let issuance = ledger.issue(native(quantity, buffer)).await.unwrap();
                let accounts = accounts();
                let mut expected: BTreeMap<Account, u64> = BTreeMap::new();
                expected.insert(inventory(), quantity - buffer);
                expected.insert(Account::Buffer, buffer);
                for (from, into, n) in steps {
                    let (from, into) = (accounts[from].clone(), accounts[into].clone());
                    let result = ledger.transfer(&to(from.clone(), into.clone(), n, &issuance.id), &[]).await;
                    let held = expected.get(&from).copied().unwrap_or(0);
                    let allowed = !from.is_final() && into != Account::Buffer && from != into;
                    match result {
                        Ok(moved) => {
                            prop_assert!(allowed && held >= n, "{from:?} -> {into:?} x{n} went through");
                            prop_assert_eq!(moved.iter().map(|b| b.range.len()).sum::<u64>(), n);
                            *expected.get_mut(&from).unwrap() -= n;
                            *expected.entry(into).or_insert(0) += n;
                        }
                        Err(LedgerError::Insufficient { available, requested }) => {
                            prop_assert!(allowed);
                            prop_assert_eq!((available, requested), (held, n));
                            prop_assert!(held < n);
                        }
                                                Err(LedgerError::Final(_) | LedgerError::IntoBuffer | LedgerError::Invalid(_)) => {
                            prop_assert!(!allowed, "{from:?} -> {into:?} x{n} refused")
                        }
                        Err(other) => prop_assert!(false, "{from:?} -> {into:?} x{n}: {other:?}"),
                    }
                    let balances = assert_whole(&ledger, &issuance.id).await;
                    expected.retain(|_, n| *n > 0);
                    prop_assert_eq!(&balances, &expected);
                }
                Ok(())
            })?;
        }
    }
}
