//! The purchase worker (`purchases` queue) and the expiry sweeper (housekeeping).
//!
//! Messages arrive at least once and in any order; the worker acts on the order's state, not on
//! the message: a success completes an order still awaiting payment (a repeat finds it completed
//! and does nothing), a failure releases it only while it awaits payment (so a `payment_failed`
//! after a `succeeded` never un-pays an order), and a success that arrives after the credits went
//! back is refunded.
//!
//! Nothing is lost between a state change and its follow-up: the message is deleted only after
//! the handler returns, so a crash after the completing write delivers the message again and the
//! worker finds the order completed and sends its follow-ups (the retirements of an order placed
//! with `retire: true`) again; the retirement sweeper covers them too. The expiry sweeper covers a message
//! that never came: an unpaid order past its time has its payment cancelled at the provider, and if the
//! provider says it was paid, the sweeper sends the success itself.

use std::sync::Arc;
use std::time::Duration;

use amanar_core::context::{Consumer, Task};
use amanar_core::messages::{JobMessage, PaymentOutcome, PaymentResult};
use amanar_core::table::items;
use amanar_core::workflow::{Flow, SweepPolicy, Verdict};
use amanar_core::{
    DepsError, FromDeps, JobError, Need, Ports, Provide, QueueError, QueueName, Received,
    TableError, keys,
};

use crate::notices;
use crate::orders::{
    Completion, FLOW, Order, OrderError, OrderSettings, OrderStatus, Orders, Tell,
};
use crate::payments::{IntentStatus, PaymentError, Payments};

/// What the worker and the sweeper use.
#[derive(Clone)]
pub struct PurchasesState {
    pub ports: Ports,
    pub payments: Arc<dyn Payments>,
    pub settings: OrderSettings,
}

impl<D> FromDeps<D> for PurchasesState
where
    D: Provide<Ports> + Provide<Arc<dyn Payments>> + Provide<OrderSettings> + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            ports: deps.need::<Ports>().await?,
            payments: deps.need::<Arc<dyn Payments>>().await?,
            settings: deps.need::<OrderSettings>().await?,
        })
    }
}

/// The consumer of the `purchases` queue.
pub const PURCHASES: Consumer<PurchasesState> = Consumer {
    function: "worker-purchases",
    queue: QueueName::Purchases,
    handle: |state, message| Box::pin(handle(state, message)),
};

/// The sweeper of unpaid orders past their time.
pub const EXPIRE_ORDERS: Task<PurchasesState> = Task {
    name: "expire-orders",
    run: |state| Box::pin(expire(state)),
};

fn retry(error: impl std::fmt::Display) -> JobError {
    JobError::Retry(error.to_string())
}

async fn handle(state: &PurchasesState, message: &Received) -> Result<(), JobError> {
    let outcome = PaymentOutcome::from_body(&message.body).map_err(JobError::Poison)?;
    let orders = Orders::new(state.ports.table.clone());
    let now = state.ports.clock.now();
    let result = match outcome.outcome {
        PaymentResult::Succeeded => paid(state, &orders, &outcome).await,
        PaymentResult::Failed | PaymentResult::Canceled => {
            unpaid(state, &orders, &outcome, now).await
        }
    };
    match result {
        Ok(()) => Ok(()),
        // Another environment's payment on a shared provider account, or an order deleted:
        // nothing of ours to move.
        Err(OrderError::NotFound) => {
            tracing::warn!(order = %outcome.order_id, event = %outcome.event_id, "payment event for an unknown order; ignored");
            Ok(())
        }
        Err(OrderError::Mismatch(why)) => {
            tracing::error!(order = %outcome.order_id, event = %outcome.event_id, %why, "payment does not match its order");
            Err(JobError::Poison(why))
        }
        Err(e) => Err(retry(e)),
    }
}

/// A succeeded payment: complete the order, or refund a payment that came too late.
async fn paid(
    state: &PurchasesState,
    orders: &Orders,
    outcome: &PaymentOutcome,
) -> Result<(), OrderError> {
    let now = state.ports.clock.now();
    match orders
        .complete(
            &outcome.order_id,
            &outcome.payment_id,
            outcome.amount_minor,
            &outcome.currency,
            now,
        )
        .await?
    {
        Completion::Completed(order) => {
            tracing::info!(order = %order.order_id, lines = order.lines.len(), "order completed");
            follow_up(state, &order).await
        }
        // Completed by an earlier delivery, which may have stopped before its follow-ups.
        Completion::AlreadyCompleted(order) => follow_up(state, &order).await,
        Completion::AlreadyRefunded(_) => Ok(()),
        Completion::PaidAfterRelease(order) => refund_late(state, orders, &order).await,
    }
}

/// What follows a completion: the retirements of an order placed with `retire: true`, written
/// with the completion, are sent to the retirement worker, and the buyer is told. Sent again on
/// every delivery of the payment (and the retirements by the retirement sweeper); the workers
/// retire each once and notify once per event.
async fn follow_up(state: &PurchasesState, order: &Order) -> Result<(), OrderError> {
    for line in &order.lines {
        if let Some(retirement_id) = &line.retirement_id {
            crate::retirements::enqueue(&*state.ports.queue, retirement_id)
                .await
                .map_err(queue_failed)?;
        }
    }
    // The user who placed it may rate what it bought (an upsert per project, out of the
    // completing transaction so it takes none of its 100 operations).
    if let Some(user) = order.placed_by.strip_prefix("user:") {
        let mut projects: Vec<&str> = order.lines.iter().map(|l| l.project_id.as_str()).collect();
        projects.sort_unstable();
        projects.dedup();
        let marks = projects
            .into_iter()
            .map(|p| amanar_marketplace::buyer_ratings::verified_buyer_op(p, user, &order.order_id))
            .collect();
        state.ports.table.write(marks).await?;
    }
    let at = order.completed_at.unwrap_or(order.updated_at);
    notices::send(&*state.ports.queue, notices::of_order(order, at))
        .await
        .map_err(queue_failed)
}

/// A queue that did not take a message: worth another try, as a table that did not answer.
fn queue_failed(error: QueueError) -> OrderError {
    OrderError::Table(TableError::Unavailable(error.to_string()))
}

/// Tells the buyer an order ended unpaid (declined, cancelled or expired): sends the notice its
/// release wrote to the outbox, if it is still there (a later call finds it sent).
async fn tell_unpaid(
    state: &PurchasesState,
    orders: &Orders,
    order_id: &str,
) -> Result<(), OrderError> {
    use amanar_core::messages::Notify;
    use amanar_core::outbox::OutboxError;
    let order = orders.get(order_id).await?.ok_or(OrderError::NotFound)?;
    let Some(notice) = notices::of_order(&order, order.updated_at) else {
        return Ok(());
    };
    let ports = &state.ports;
    match Notify::send_staged(&*ports.table, &*ports.queue, &notice.event).await {
        Ok(()) => Ok(()),
        Err(OutboxError::Queue(e)) => Err(queue_failed(e)),
        Err(OutboxError::Table(e)) => Err(e.into()),
        // Left to the outbox's sweeper, which gives it up with its reason.
        Err(OutboxError::Undeliverable(why)) => {
            tracing::error!(order = %order_id, %why, "the order's notice cannot be sent");
            Ok(())
        }
    }
}

/// Refunds a payment that succeeded after its order's credits went back.
async fn refund_late(
    state: &PurchasesState,
    orders: &Orders,
    order: &Order,
) -> Result<(), OrderError> {
    let Some(payment) = &order.payment else {
        return Err(OrderError::Mismatch(
            "a paid order without a payment".into(),
        ));
    };
    let refund = state
        .payments
        .refund(&payment.payment_id, &format!("refund:{}", order.order_id))
        .await
        .map_err(|e| OrderError::Table(TableError::Unavailable(e.to_string())))?;
    tracing::warn!(order = %order.order_id, %refund, "paid after its reservation was released; refunded");
    orders
        .mark_refunded(order, &refund, state.ports.clock.now())
        .await?;
    Ok(())
}

/// A declined or cancelled payment: the order's credits go back while it awaits payment. The
/// payment is cancelled first, so the buyer cannot pay for credits that went back; if the
/// provider says it was paid meanwhile, the order completes instead.
async fn unpaid(
    state: &PurchasesState,
    orders: &Orders,
    outcome: &PaymentOutcome,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), OrderError> {
    let order = orders
        .get(&outcome.order_id)
        .await?
        .ok_or(OrderError::NotFound)?;
    match order.status {
        OrderStatus::PendingPayment => {}
        // Released by an earlier delivery, which may have stopped before telling the buyer.
        OrderStatus::PaymentFailed | OrderStatus::Expired => {
            return tell_unpaid(state, orders, &order.order_id).await;
        }
        _ => return Ok(()),
    }
    if let Some(payment) = &order.payment
        && payment.payment_id != outcome.payment_id
    {
        return Err(OrderError::Mismatch(format!(
            "payment {} is not the order's",
            outcome.payment_id
        )));
    }
    match cancel_at_provider(state, &outcome.payment_id).await? {
        Some(paid) => {
            let success = PaymentOutcome {
                outcome: PaymentResult::Succeeded,
                amount_minor: paid.0,
                currency: paid.1,
                ..outcome.clone()
            };
            paid_again(state, orders, &success).await
        }
        None => {
            let (to, reason) = match outcome.outcome {
                PaymentResult::Failed => (OrderStatus::PaymentFailed, "the payment was declined"),
                _ if now >= order.expires_at => (OrderStatus::Expired, "not paid in time"),
                _ => (OrderStatus::PaymentFailed, "the payment was cancelled"),
            };
            orders
                .release(&order.order_id, to, reason, Tell::Buyer, None, now)
                .await?;
            tell_unpaid(state, orders, &order.order_id).await
        }
    }
}

async fn paid_again(
    state: &PurchasesState,
    orders: &Orders,
    success: &PaymentOutcome,
) -> Result<(), OrderError> {
    Box::pin(paid(state, orders, success)).await
}

/// Cancels a payment; `Some((amount, currency))` when the provider says it succeeded instead.
async fn cancel_at_provider(
    state: &PurchasesState,
    payment_id: &str,
) -> Result<Option<(i64, String)>, OrderError> {
    let unavailable = |e: PaymentError| OrderError::Table(TableError::Unavailable(e.to_string()));
    match state.payments.cancel(payment_id).await {
        Ok(IntentStatus::Canceled) | Err(PaymentError::NotFound) => Ok(None),
        Ok(IntentStatus::Succeeded) => {
            let intent = state
                .payments
                .intent(payment_id)
                .await
                .map_err(unavailable)?;
            Ok(Some((intent.amount_minor, intent.currency)))
        }
        // Processing or still waiting: not settled yet; the next delivery or sweep looks again.
        Ok(status) => Err(OrderError::Unsettled(format!(
            "payment {payment_id} is {status:?}; waiting for it to settle"
        ))),
        Err(e) => Err(unavailable(e)),
    }
}

const SWEEP_BUDGET: Duration = Duration::from_secs(20);

/// Expires unpaid orders past their time: cancels the payment, then gives the credits back. A
/// payment the provider reports as paid is sent to the purchase worker instead.
async fn expire(state: &PurchasesState) -> Result<usize, String> {
    let ports = &state.ports;
    let orders = Orders::new(ports.table.clone());
    let now = ports.clock.now();
    let policy = SweepPolicy {
        stale_after: state.settings.ttl,
        limit: 1000,
        budget: SWEEP_BUDGET,
    };
    let report = FLOW
        .sweep(&*ports.table, now, policy, |item| {
            let orders = orders.clone();
            async move {
                let seen = item.clone();
                let order: Order = items::parse(item)?;
                if order.status != OrderStatus::PendingPayment || order.expires_at > now {
                    return Ok(Verdict::Waiting);
                }
                let unavailable = |e: OrderError| TableError::Unavailable(e.to_string());
                let nudge = || {
                    Flow::as_seen(
                        FLOW.nudge(
                            keys::order(&order.order_id),
                            &order.order_id,
                            OrderStatus::PendingPayment,
                            now,
                        ),
                        &seen,
                    )
                };
                let paid = match &order.payment {
                    Some(payment) => match cancel_at_provider(state, &payment.payment_id).await {
                        Ok(paid) => paid,
                        // A payment still processing (a bank debit takes days): out of sight
                        // for another period, so it never holds up the orders behind it.
                        Err(OrderError::Unsettled(_)) => {
                            Flow::apply(&*ports.table, nudge()).await?;
                            return Ok(Verdict::Nudged);
                        }
                        Err(e) => return Err(unavailable(e)),
                    },
                    None => None,
                };
                match (paid, &order.payment) {
                    (Some((amount_minor, currency)), Some(payment)) => {
                        let success = PaymentOutcome {
                            event_id: format!("sweep:{}", order.order_id),
                            provider: payment.provider.clone(),
                            payment_id: payment.payment_id.clone(),
                            order_id: order.order_id.clone(),
                            outcome: PaymentResult::Succeeded,
                            amount_minor,
                            currency,
                            at: now,
                        };
                        ports
                            .queue
                            .send(QueueName::Purchases, &success.to_body(), Duration::ZERO)
                            .await
                            .map_err(|e| TableError::Unavailable(e.to_string()))?;
                        Flow::apply(&*ports.table, nudge()).await?;
                        Ok(Verdict::Nudged)
                    }
                    _ => {
                        let released = orders
                            .release(
                                &order.order_id,
                                OrderStatus::Expired,
                                "not paid in time",
                                Tell::Buyer,
                                Some(order.version),
                                now,
                            )
                            .await
                            .map_err(unavailable)?;
                        // Told once released, never before: a release that loses to a payment
                        // must not tell the buyer it expired. The release wrote the notice to
                        // the outbox; a queue that fails now (or a crash) leaves it to the
                        // outbox's sweeper.
                        if released
                            && let Err(error) = tell_unpaid(state, &orders, &order.order_id).await
                        {
                            tracing::warn!(order = %order.order_id, %error, "expiry notification left to the outbox's sweeper");
                        }
                        Ok(if released {
                            Verdict::GaveUp
                        } else {
                            Verdict::Waiting
                        })
                    }
                }
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(report.moved())
}
