//! Orders on both faces: placing reserves exactly what each line asks or nothing, concurrent
//! buyers never oversell, completing moves the reserve into holdings once, and releasing gives it
//! back to the listing (or, once closed, to the seller).

use std::sync::Arc;

use amanar_core::table::Table;
use amanar_marketplace::fixtures;
use amanar_marketplace::ledger::{Account, Ledger, check_blocks};
use amanar_marketplace::listings::{Listing, Listings};
use amanar_marketplace::money::Money;
use amanar_marketplace::projects::Project;
use amanar_orders::holdings::Holdings;
use amanar_orders::orders::{
    Completion, LineRequest, NewOrder, OrderError, OrderSettings, OrderStatus, Orders, Tell,
};
use amanar_testkit::namespace;
use chrono::Utc;

use amanar_testkit::both_faces;

async fn approved(table: &Arc<dyn Table>, owner: &str) -> Project {
    let fields = fixtures::forest("Highland community forest", "KE");
    fixtures::approved(table, &format!("prj_{}", namespace()), owner, fields).await
}

/// A listing of `quantity` native credits at `price` USD per tonne, and its issuance id.
async fn listed(table: &Arc<dyn Table>, quantity: u64, price: &str) -> (Listing, String) {
    let owner = format!("ORG#org_{}", namespace());
    let project = approved(table, &owner).await;
    let id = format!("iss_{}", namespace());
    let price = Money::parse(price, "USD").unwrap();
    let listing = fixtures::listed(
        table,
        &project,
        &id,
        &format!("lst_{}", namespace()),
        quantity,
        price,
    )
    .await;
    (listing, id)
}

fn order(buyer: &str, lines: &[(&str, u64)]) -> NewOrder {
    NewOrder {
        order_id: format!("ord_{}", namespace()),
        buyer: buyer.into(),
        placed_by: "user:usr_buyer".into(),
        lines: lines
            .iter()
            .map(|(listing, quantity)| LineRequest {
                listing_id: (*listing).into(),
                quantity: *quantity,
            })
            .collect(),
        retire: false,
        beneficiary: None,
        reason: None,
        fingerprint: "f1".into(),
        now: Utc::now(),
    }
}

async fn available(table: &Arc<dyn Table>, listing: &str) -> u64 {
    Listings::new(table.clone())
        .get(listing)
        .await
        .unwrap()
        .unwrap()
        .available
}

async fn an_order_reserves_every_line_or_nothing_and_completes_into_holdings_once(
    table: Arc<dyn Table>,
) {
    let settings = OrderSettings::default();
    let orders = Orders::new(table.clone());
    let (a, issuance_a) = listed(&table, 10, "12.50").await;
    let (b, _) = listed(&table, 5, "7.333").await;
    let buyer = format!("USER#usr_{}", namespace());

    // One line too many: nothing of either listing is reserved.
    let refused = orders
        .place(order(&buyer, &[(&a.id, 4), (&b.id, 6)]), &settings)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, OrderError::Insufficient { listing_id, available: 5, requested: 6 } if *listing_id == b.id),
        "{refused:?}"
    );
    assert_eq!(
        (
            available(&table, &a.id).await,
            available(&table, &b.id).await
        ),
        (10, 5)
    );

    let new = order(&buyer, &[(&a.id, 4), (&b.id, 2)]);
    let placed = orders.place(new.clone(), &settings).await.unwrap();
    assert_eq!(placed.status, OrderStatus::PendingPayment);
    assert_eq!(placed.lines[0].price.to_string(), "50.00 USD");
    assert_eq!(placed.lines[1].price.to_string(), "14.66 USD");
    assert_eq!(placed.subtotal.to_string(), "64.66 USD");
    assert_eq!(
        placed.fee.to_string(),
        "3.23 USD",
        "5 % of the subtotal, rounded"
    );
    assert_eq!(placed.total.to_string(), "67.89 USD");
    assert_eq!(
        (
            available(&table, &a.id).await,
            available(&table, &b.id).await
        ),
        (6, 3)
    );
    // The same order again is the same order; the same id for another request is refused.
    assert_eq!(orders.place(new.clone(), &settings).await.unwrap(), placed);
    let other = NewOrder {
        fingerprint: "f2".into(),
        ..new.clone()
    };
    assert!(matches!(
        orders.place(other, &settings).await,
        Err(OrderError::KeyReused)
    ));
    assert_eq!(
        available(&table, &a.id).await,
        6,
        "a replay reserves nothing"
    );

    // A payment for another amount is refused; the right one completes the order once.
    let total = placed.total.minor_units();
    assert!(matches!(
        orders
            .complete(&placed.order_id, "pi_1", total - 1, "usd", Utc::now())
            .await,
        Err(OrderError::Mismatch(_))
    ));
    let Completion::Completed(done) = orders
        .complete(&placed.order_id, "pi_1", total, "usd", Utc::now())
        .await
        .unwrap()
    else {
        panic!("completes")
    };
    assert_eq!(done.status, OrderStatus::Completed);
    assert_eq!(
        done.lines[0].serials,
        vec![format!("AMC-{issuance_a}-1-4")],
        "the lowest serials of the listing, exactly"
    );
    assert!(matches!(
        orders
            .complete(&placed.order_id, "pi_1", total, "usd", Utc::now())
            .await,
        Ok(Completion::AlreadyCompleted(_))
    ));
    // A late failure never un-pays it.
    assert!(
        !orders
            .release(
                &placed.order_id,
                OrderStatus::PaymentFailed,
                "declined",
                Tell::Buyer,
                None,
                Utc::now()
            )
            .await
            .unwrap()
    );
    let holdings = Holdings::new(table.clone());
    let (held, _) = holdings.of_owner(&buyer, 10, None).await.unwrap();
    assert_eq!(held.len(), 2);
    let first = held.iter().find(|h| h.line == 1).unwrap();
    let view = holdings.view(first.clone()).await.unwrap();
    assert_eq!(
        (view.available, view.held_serials.clone()),
        (4, first.serials.clone())
    );
    let ledger = Ledger::new(table.clone());
    let issuance = ledger.issuance(&issuance_a).await.unwrap().unwrap();
    check_blocks(&issuance, &ledger.blocks(&issuance_a).await.unwrap()).unwrap();
    assert_eq!(
        ledger
            .balance(&Account::Listing(a.id.clone()), Some(&issuance_a))
            .await
            .unwrap(),
        6
    );
}

async fn a_released_order_gives_its_credits_back_to_the_listing_or_to_a_closed_listings_seller(
    table: Arc<dyn Table>,
) {
    let settings = OrderSettings::default();
    let orders = Orders::new(table.clone());
    let (a, issuance) = listed(&table, 10, "3").await;
    let buyer = format!("USER#usr_{}", namespace());
    let first = orders
        .place(order(&buyer, &[(&a.id, 3)]), &settings)
        .await
        .unwrap();
    assert!(
        orders
            .release(
                &first.order_id,
                OrderStatus::PaymentFailed,
                "declined",
                Tell::Buyer,
                None,
                Utc::now()
            )
            .await
            .unwrap()
    );
    assert_eq!(available(&table, &a.id).await, 10);
    let stored = orders.get(&first.order_id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::PaymentFailed);
    // The buyer's notice went into the outbox in the release's own write.
    let event = format!("order-payment-failed:{}", first.order_id);
    let staged = table
        .get(&amanar_core::keys::outbox(&amanar_core::outbox::id(&event)))
        .await
        .unwrap()
        .expect("the notice of the release, in the outbox");
    assert!(
        staged["body"].as_str().unwrap().contains(&event),
        "{staged:?}"
    );
    // Paid after all: the credits are gone, so the payment is to be refunded.
    assert!(matches!(
        orders
            .complete(
                &first.order_id,
                "pi_x",
                stored.total.minor_units(),
                "USD",
                Utc::now()
            )
            .await,
        Ok(Completion::PaidAfterRelease(_))
    ));

    // Reserved, then the listing closes: the reserve goes to the seller's inventory.
    let second = orders
        .place(order(&buyer, &[(&a.id, 4)]), &settings)
        .await
        .unwrap();
    Listings::new(table.clone())
        .close(&a.id, None, "user:usr_dev", Utc::now())
        .await
        .unwrap();
    assert!(
        orders
            .release(
                &second.order_id,
                OrderStatus::Expired,
                "not paid in time",
                Tell::Buyer,
                None,
                Utc::now()
            )
            .await
            .unwrap()
    );
    let ledger = Ledger::new(table.clone());
    assert_eq!(
        ledger
            .balance(&Account::Inventory(a.seller.clone()), Some(&issuance))
            .await
            .unwrap(),
        10
    );
    assert_eq!(available(&table, &a.id).await, 0);
}

/// 200 buyers of one tonne each on a 100 t listing: exactly 100 orders are placed, the rest are
/// refused as sold out, and the ledger and the listing agree.
async fn concurrent_buyers_never_oversell(table: Arc<dyn Table>) {
    let (listing, issuance) = listed(&table, 100, "10").await;
    let settings = OrderSettings::default();
    let mut buyers = Vec::new();
    for n in 0..200 {
        let orders = Orders::new(table.clone());
        let settings = settings.clone();
        let listing_id = listing.id.clone();
        buyers.push(tokio::spawn(async move {
            let buyer = format!("USER#usr_{n}");
            let mut attempts = 0;
            loop {
                match orders
                    .place(order(&buyer, &[(&listing_id, 1)]), &settings)
                    .await
                {
                    Ok(placed) => return Some(placed),
                    Err(OrderError::Insufficient { .. }) => return None,
                    // Busy (the API answers 503 with Retry-After): a client retries.
                    Err(OrderError::Contended) if attempts < 20 => attempts += 1,
                    Err(OrderError::Table(e)) if e.is_transient() && attempts < 20 => attempts += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    let mut placed = Vec::new();
    for buyer in buyers {
        placed.extend(buyer.await.unwrap());
    }
    assert_eq!(placed.len(), 100, "exactly the listing's 100 t are sold");
    assert_eq!(available(&table, &listing.id).await, 0);

    // Four workers complete the 100 paid orders: every tonne lands in exactly one holding.
    let queue = Arc::new(tokio::sync::Mutex::new(placed));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (queue, orders) = (queue.clone(), Orders::new(table.clone()));
        workers.push(tokio::spawn(async move {
            loop {
                let Some(order) = queue.lock().await.pop() else {
                    return;
                };
                let total = order.total.minor_units();
                let mut attempts = 0;
                loop {
                    match orders
                        .complete(&order.order_id, "pi", total, "USD", Utc::now())
                        .await
                    {
                        Ok(Completion::Completed(_)) => break,
                        // The worker's message comes back after a contended or failed attempt.
                        Err(OrderError::Contended) | Err(OrderError::Table(_)) if attempts < 20 => {
                            attempts += 1
                        }
                        other => panic!("{other:?}"),
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let ledger = Ledger::new(table.clone());
    let blocks = ledger.blocks(&issuance).await.unwrap();
    check_blocks(&ledger.issuance(&issuance).await.unwrap().unwrap(), &blocks).unwrap();
    assert!(
        blocks
            .iter()
            .all(|b| matches!(&b.account, Account::Holding(_))),
        "every credit is held"
    );
    let mut owners: Vec<&str> = blocks.iter().filter_map(|b| b.account.owner()).collect();
    owners.sort();
    owners.dedup();
    assert_eq!(owners.len(), 100, "one tonne per buyer");
}

/// The retirement worker's ports over `table`: an embedded queue (unused by these cases) and
/// blobs in `dir`.
fn worker_ports(table: &Arc<dyn Table>, dir: &std::path::Path) -> amanar_core::Ports {
    let embedded = amanar_embedded::EmbeddedStore::open(&dir.join("db")).unwrap();
    amanar_core::Ports {
        table: table.clone(),
        queue: Arc::new(embedded.queue),
        blobs: Arc::new(amanar_embedded::LocalBlobs::new(
            dir.join("blobs"),
            "http://127.0.0.1:1",
            b"test".to_vec(),
        )),
        clock: Arc::new(amanar_core::SystemClock),
    }
}

/// Twenty concurrent retirements of 1 t from a 10 t holding: exactly ten are accepted; each is
/// carried out three times over (redelivered copies) and retires its own serial once; the
/// ledger then holds ten retired tonnes and nothing else moved.
async fn concurrent_retirements_never_exceed_a_holding_and_copies_retire_once(
    table: Arc<dyn Table>,
) {
    use amanar_orders::retirements::{
        NewRetirement, RetirementError, RetirementStatus, Retirements,
    };

    let settings = OrderSettings::default();
    let orders = Orders::new(table.clone());
    let (listing, issuance) = listed(&table, 10, "5").await;
    let placed = orders
        .place(order("USER#usr_retirer", &[(&listing.id, 10)]), &settings)
        .await
        .unwrap();
    let Completion::Completed(done) = orders
        .complete(
            &placed.order_id,
            "pi",
            placed.total.minor_units(),
            "USD",
            Utc::now(),
        )
        .await
        .unwrap()
    else {
        panic!("completes")
    };
    let holding_id = done.lines[0].holding_id.clone().unwrap();
    let holding = Holdings::new(table.clone())
        .get(&holding_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holding.unretired, 10);

    let mut requests = Vec::new();
    for n in 0..20 {
        let (store, holding) = (Retirements::new(table.clone()), holding.clone());
        requests.push(tokio::spawn(async move {
            let new = NewRetirement {
                retirement_id: format!("ret_{}_{n}", namespace()),
                holding,
                requested_by: "user:usr_retirer".into(),
                quantity: 1,
                beneficiary: "Acme".into(),
                reason: None,
                registry_project_id: None,
                registry_url: None,
                fingerprint: format!("f{n}"),
                order_id: None,
                now: Utc::now(),
            };
            match store.request(&new).await {
                Ok((r, true)) => Some(r.retirement_id),
                Err(RetirementError::Insufficient { .. }) => None,
                other => panic!("{other:?}"),
            }
        }));
    }
    let mut accepted = Vec::new();
    for request in requests {
        accepted.extend(request.await.unwrap());
    }
    assert_eq!(accepted.len(), 10, "exactly the holding's 10 t are claimed");

    let dir = tempfile::tempdir().unwrap();
    let ports = worker_ports(&table, dir.path());
    let mut workers = Vec::new();
    for id in accepted.iter().chain(&accepted).chain(&accepted) {
        let (ports, id) = (ports.clone(), id.clone());
        workers.push(tokio::spawn(async move {
            for _ in 0..20 {
                if amanar_orders::retirement_worker::carry_out(&ports, &id)
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            panic!("retirement {id} kept failing");
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let store = Retirements::new(table.clone());
    let mut serials = Vec::new();
    for id in &accepted {
        let r = store.get(id).await.unwrap().unwrap();
        assert_eq!(r.status, RetirementStatus::Completed);
        assert_eq!(r.serials.len(), 1);
        assert!(r.verification_hash.is_some());
        let pdf = ports
            .blobs
            .get(
                amanar_core::Bucket::Exports,
                r.certificate_key.as_deref().unwrap(),
            )
            .await
            .unwrap()
            .expect("its certificate");
        let text = lopdf::Document::load_mem(&pdf.bytes)
            .unwrap()
            .extract_text(&[1])
            .unwrap();
        assert!(
            text.contains(r.verification_hash.as_deref().unwrap()),
            "{text}"
        );
        serials.extend(r.serials);
    }
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 10, "no serial retired twice");
    let ledger = Ledger::new(table.clone());
    let blocks = ledger.blocks(&issuance).await.unwrap();
    check_blocks(&ledger.issuance(&issuance).await.unwrap().unwrap(), &blocks).unwrap();
    let retired: u64 = blocks
        .iter()
        .filter(|b| matches!(b.account, Account::Retired(_)))
        .map(|b| b.range.len())
        .sum();
    assert_eq!(retired, 10);
}

/// A retirement whose credits are gone from the holding's account (moved by something else)
/// ends `failed` and gives its tonnes back to the holding, instead of cycling through the DLQ.
async fn a_retirement_that_cannot_be_carried_out_fails_and_gives_its_tonnes_back(
    table: Arc<dyn Table>,
) {
    use amanar_marketplace::ledger::Transfer;
    use amanar_orders::retirements::{NewRetirement, RetirementStatus, Retirements};

    let orders = Orders::new(table.clone());
    let (listing, issuance) = listed(&table, 4, "5").await;
    let placed = orders
        .place(
            order("USER#usr_failing", &[(&listing.id, 4)]),
            &OrderSettings::default(),
        )
        .await
        .unwrap();
    let Completion::Completed(done) = orders
        .complete(
            &placed.order_id,
            "pi",
            placed.total.minor_units(),
            "USD",
            Utc::now(),
        )
        .await
        .unwrap()
    else {
        panic!("completes")
    };
    let holding_id = done.lines[0].holding_id.clone().unwrap();
    let holdings = Holdings::new(table.clone());
    let holding = holdings.get(&holding_id).await.unwrap().unwrap();
    Ledger::new(table.clone())
        .transfer(
            &Transfer {
                id: format!("elsewhere:{}", namespace()),
                from: holding.account(),
                to: Account::Cancelled(format!("cnl_{}", namespace())),
                quantity: 4,
                issuance: issuance.clone(),
            },
            &[],
        )
        .await
        .unwrap();
    let store = Retirements::new(table.clone());
    let (requested, _) = store
        .request(&NewRetirement {
            retirement_id: format!("ret_{}", namespace()),
            holding: holding.clone(),
            requested_by: "user:usr_failing".into(),
            quantity: 3,
            beneficiary: "Acme".into(),
            reason: None,
            registry_project_id: None,
            registry_url: None,
            fingerprint: "f".into(),
            order_id: None,
            now: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(
        holdings.get(&holding_id).await.unwrap().unwrap().unretired,
        1
    );
    let dir = tempfile::tempdir().unwrap();
    let ports = worker_ports(&table, dir.path());
    amanar_orders::retirement_worker::carry_out(&ports, &requested.retirement_id)
        .await
        .unwrap();
    let failed = store.get(&requested.retirement_id).await.unwrap().unwrap();
    assert_eq!(failed.status, RetirementStatus::Failed);
    assert!(failed.reason_failed.unwrap().contains("available"));
    assert_eq!(
        holdings.get(&holding_id).await.unwrap().unwrap().unretired,
        4
    );
    // A copy of the message changes nothing more.
    amanar_orders::retirement_worker::carry_out(&ports, &requested.retirement_id)
        .await
        .unwrap();
    assert_eq!(
        holdings.get(&holding_id).await.unwrap().unwrap().unretired,
        4
    );
}

/// A queue whose sends fail while it is `down`, as when a worker dies after its ledger write
/// and before its messages (the rest of the handler never runs; a failed send ends it the same
/// way, with the message redelivered).
struct Severed {
    inner: Arc<dyn amanar_core::Queue>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl amanar_core::Queue for Severed {
    async fn send(
        &self,
        queue: amanar_core::QueueName,
        body: &str,
        delay: std::time::Duration,
    ) -> Result<String, amanar_core::QueueError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(amanar_core::QueueError::Backend("severed".into()));
        }
        self.inner.send(queue, body, delay).await
    }
    async fn receive(
        &self,
        queue: amanar_core::QueueName,
        max: usize,
        visibility: std::time::Duration,
        wait: std::time::Duration,
    ) -> Result<Vec<amanar_core::Received>, amanar_core::QueueError> {
        self.inner.receive(queue, max, visibility, wait).await
    }
    async fn delete(
        &self,
        queue: amanar_core::QueueName,
        receipt: &str,
    ) -> Result<(), amanar_core::QueueError> {
        self.inner.delete(queue, receipt).await
    }
    async fn change_visibility(
        &self,
        queue: amanar_core::QueueName,
        receipt: &str,
        visibility: std::time::Duration,
    ) -> Result<(), amanar_core::QueueError> {
        self.inner
            .change_visibility(queue, receipt, visibility)
            .await
    }
}

/// Every message waiting in `queue`, taken off it.
async fn drain(queue: &dyn amanar_core::Queue, name: amanar_core::QueueName) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = queue
            .receive(
                name,
                10,
                std::time::Duration::from_secs(60),
                std::time::Duration::ZERO,
            )
            .await
            .unwrap();
        if got.is_empty() {
            return bodies;
        }
        for m in got {
            queue.delete(name, &m.receipt).await.unwrap();
            bodies.push(m.body);
        }
    }
}

/// The purchase worker completes an order (ledger transfer and order in one write), then dies
/// before its retirement and notification messages; the redelivered payment sends them, a third
/// copy changes nothing in the ledger. The retirement worker then dies after retiring and
/// certifying, before telling the buyer; its redelivery tells without retiring again. In the
/// end: one holding, 3 t retired once with one certificate, the listing down by exactly 3 t,
/// every block of the issuance contiguous and disjoint.
async fn workers_that_die_between_their_ledger_write_and_their_messages_lose_and_duplicate_nothing(
    table: Arc<dyn Table>,
) {
    use amanar_core::messages::{JobMessage, PaymentOutcome, PaymentResult};
    use amanar_core::{JobError, QueueName, Received};
    use amanar_orders::payments::LocalPayments;
    use amanar_orders::retirements::{RetirementStatus, Retirements};
    use amanar_orders::worker::{PURCHASES, PurchasesState};
    use std::sync::atomic::Ordering;

    let (listing, issuance) = listed(&table, 10, "12.50").await;
    let settings = OrderSettings::default();
    let orders = Orders::new(table.clone());
    let mut new = order("USER#usr_faulty", &[(&listing.id, 3)]);
    new.placed_by = "user:usr_faulty".into();
    new.retire = true;
    new.beneficiary = Some("Faulty Bakery".into());
    let placed = orders.place(new, &settings).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut ports = worker_ports(&table, dir.path());
    let queue = Arc::new(Severed {
        inner: ports.queue.clone(),
        down: true.into(),
    });
    ports.queue = queue.clone();
    let state = PurchasesState {
        payments: Arc::new(LocalPayments::new(
            table.clone(),
            ports.clock.clone(),
            b"test",
            amanar_orders::SigningSecrets::parse("whsec_test").unwrap(),
        )),
        ports: ports.clone(),
        settings,
    };
    let delivery = |n: u32| Received {
        id: "m1".into(),
        receipt: format!("m1.{n}"),
        receive_count: n,
        body: PaymentOutcome {
            event_id: format!("evt_{}", placed.order_id),
            provider: "local".into(),
            payment_id: "pi_faulty".into(),
            order_id: placed.order_id.clone(),
            outcome: PaymentResult::Succeeded,
            amount_minor: placed.total.minor_units(),
            currency: "usd".into(),
            at: Utc::now(),
        }
        .to_body(),
    };

    // First delivery: the completion commits, the messages do not go.
    let first = (PURCHASES.handle)(&state, &delivery(1)).await;
    assert!(matches!(first, Err(JobError::Retry(_))), "{first:?}");
    let completed = orders.get(&placed.order_id).await.unwrap().unwrap();
    assert_eq!(completed.status, OrderStatus::Completed);
    let retirement_id = completed.lines[0].retirement_id.clone().unwrap();
    assert!(drain(&*queue, QueueName::Retirements).await.is_empty());
    assert!(drain(&*queue, QueueName::Notifications).await.is_empty());

    // The redelivery sends what the first one could not; a third copy only sends again.
    queue.down.store(false, Ordering::SeqCst);
    for n in [2, 3] {
        (PURCHASES.handle)(&state, &delivery(n)).await.unwrap();
    }
    let sent = drain(&*queue, QueueName::Retirements).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|b| b.contains(&retirement_id)));
    let told = drain(&*queue, QueueName::Notifications).await;
    assert_eq!(
        told.len(),
        2,
        "one notice per delivery (the notifications worker makes them one notification): {told:?}"
    );
    assert!(
        told.iter()
            .all(|b| b.contains(&format!("order-completed:{}", placed.order_id))),
        "{told:?}"
    );
    assert_eq!(
        orders.get(&placed.order_id).await.unwrap().unwrap().lines,
        completed.lines,
        "the copies changed nothing"
    );

    // The retirement worker retires and certifies, then cannot tell the buyer; retried, it
    // tells without retiring again.
    queue.down.store(true, Ordering::SeqCst);
    let dead = amanar_orders::retirement_worker::carry_out(&ports, &retirement_id).await;
    assert!(matches!(dead, Err(JobError::Retry(_))), "{dead:?}");
    let store = Retirements::new(table.clone());
    let retired = store.get(&retirement_id).await.unwrap().unwrap();
    assert_eq!(retired.status, RetirementStatus::Completed);
    queue.down.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        amanar_orders::retirement_worker::carry_out(&ports, &retirement_id)
            .await
            .unwrap();
    }
    let again = store.get(&retirement_id).await.unwrap().unwrap();
    assert_eq!(again.serials, retired.serials);
    assert_eq!(again.certificate_key, retired.certificate_key);
    assert_eq!(again.verification_hash, retired.verification_hash);
    let told = drain(&*queue, QueueName::Notifications).await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told.iter()
            .all(|b| b.contains(&format!("retirement-completed:{retirement_id}"))),
        "{told:?}"
    );

    let ledger = Ledger::new(table.clone());
    let blocks = ledger.blocks(&issuance).await.unwrap();
    check_blocks(&ledger.issuance(&issuance).await.unwrap().unwrap(), &blocks).unwrap();
    let retired_tonnes: u64 = blocks
        .iter()
        .filter(|b| matches!(b.account, Account::Retired(_)))
        .map(|b| b.range.len())
        .sum();
    assert_eq!(retired_tonnes, 3, "{blocks:#?}");
    assert_eq!(available(&table, &listing.id).await, 7);
    let holding = Holdings::new(table.clone())
        .get(completed.lines[0].holding_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holding.unretired, 0);
}

/// A buyer may have only so many orders awaiting payment: one more is refused with nothing
/// reserved; releasing or completing one makes room again.
async fn a_buyer_has_at_most_its_cap_of_unpaid_orders(table: Arc<dyn Table>) {
    let settings = OrderSettings {
        max_unpaid: 2,
        ..OrderSettings::default()
    };
    let orders = Orders::new(table.clone());
    let (listing, _) = listed(&table, 10, "2").await;
    // One 1 t order of `buyer`, and the release of an order as expired.
    let place = |buyer: &str| orders.place(order(buyer, &[(&listing.id, 1)]), &settings);
    let expire = |order_id: String| {
        let orders = &orders;
        async move {
            orders
                .release(
                    &order_id,
                    OrderStatus::Expired,
                    "not paid in time",
                    Tell::Nobody,
                    None,
                    Utc::now(),
                )
                .await
        }
    };
    let buyer = format!("USER#usr_{}", namespace());
    let first = place(&buyer).await.unwrap();
    let second = place(&buyer).await.unwrap();
    assert!(matches!(
        place(&buyer).await,
        Err(OrderError::TooManyUnpaid(2))
    ));
    assert_eq!(available(&table, &listing.id).await, 8, "nothing reserved");
    // Another buyer is not held up.
    let other = format!("USER#usr_{}", namespace());
    place(&other).await.unwrap();

    assert!(expire(first.order_id.clone()).await.unwrap());
    place(&buyer).await.unwrap();
    assert!(matches!(
        orders
            .complete(
                &second.order_id,
                "pi_cap",
                second.total.minor_units(),
                "USD",
                Utc::now()
            )
            .await,
        Ok(Completion::Completed(_))
    ));
    place(&buyer).await.unwrap();
    assert!(matches!(
        place(&buyer).await,
        Err(OrderError::TooManyUnpaid(2))
    ));

    // An order placed before the cap existed was never counted: its end takes nothing off.
    use amanar_core::table::{Update, WriteOp};
    let early = format!("USER#usr_{}", namespace());
    let legacy = place(&early).await.unwrap();
    table
        .write(vec![
            WriteOp::update(
                amanar_core::keys::order(&legacy.order_id),
                Update::new().remove("countedUnpaid"),
            ),
            WriteOp::update(
                amanar_core::keys::unpaid_orders(&early),
                Update::new().add("unpaid", -1),
            ),
        ])
        .await
        .unwrap();
    assert!(expire(legacy.order_id.clone()).await.unwrap());
    for _ in 0..2 {
        place(&early).await.unwrap();
    }
    assert!(matches!(
        place(&early).await,
        Err(OrderError::TooManyUnpaid(2))
    ));
}

both_faces!(
    a_buyer_has_at_most_its_cap_of_unpaid_orders,
    an_order_reserves_every_line_or_nothing_and_completes_into_holdings_once,
    a_released_order_gives_its_credits_back_to_the_listing_or_to_a_closed_listings_seller,
    concurrent_buyers_never_oversell,
    concurrent_retirements_never_exceed_a_holding_and_copies_retire_once,
    a_retirement_that_cannot_be_carried_out_fails_and_gives_its_tonnes_back,
    workers_that_die_between_their_ledger_write_and_their_messages_lose_and_duplicate_nothing,
);
