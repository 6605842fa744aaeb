//! The notifications orders and retirements send (`notifications` queue): the words a buyer
//! reads, and who reads them. Each names its event once (`order-completed:<orderId>`), so a
//! redelivery, a sweeper and a crash-and-retry all give one notification.

use amanar_core::messages::{NotificationKind, Notify, Recipient};
use amanar_core::{Queue, QueueError};
use chrono::{DateTime, Utc};

use crate::orders::{Order, OrderStatus};
use crate::retirements::Retirement;
use crate::retirements::vintage_text;

fn tonnes(quantity: u64) -> String {
    format!("{quantity} t")
}

/// What an order bought, in a line: "3 t of Kasigau Corridor REDD+ (2019)".
fn bought(order: &Order) -> String {
    order
        .lines
        .iter()
        .map(|l| {
            format!(
                "{} of {} ({})",
                tonnes(l.quantity),
                l.project_name,
                vintage_text(&l.vintage)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The notification of an order that ended: completed, payment failed or expired. `None` for a
/// state nobody is told about.
pub fn of_order(order: &Order, at: DateTime<Utc>) -> Option<Notify> {
    let recipient = Recipient::for_owner(&order.buyer, Some(&order.placed_by))?;
    let total = order.total.to_string();
    let (event, kind, title, body) = match order.status {
        OrderStatus::Completed => (
            "order-completed",
            NotificationKind::OrderCompleted,
            "Your order is complete".to_owned(),
            format!(
                "Order {} is paid ({total}). You now hold {}; the exact serial numbers are on the order and in your holdings.{}",
                order.order_id,
                bought(order),
                if order.retire {
                    " The credits are being retired as you asked; you will be told when the certificate is ready."
                } else {
                    ""
                }
            ),
        ),
        OrderStatus::PaymentFailed => (
            "order-payment-failed",
            NotificationKind::PaymentFailed,
            "Your payment did not go through".to_owned(),
            format!(
                "The payment for order {} ({total}) failed, so the credits went back on sale: {}. You may place the order again.",
                order.order_id,
                bought(order)
            ),
        ),
        OrderStatus::Expired => (
            "order-expired",
            NotificationKind::OrderExpired,
            "Your order expired".to_owned(),
            format!(
                "Order {} ({total}) was not paid in time, so its credits went back on sale: {}. You may place the order again.",
                order.order_id,
                bought(order)
            ),
        ),
        _ => return None,
    };
    Some(Notify {
        event: format!("{event}:{}", order.order_id),
        kind,
        recipient,
        title,
        body,
        link: Some(format!("/v1/orders/{}", order.order_id)),
        at,
    })
}

/// The notification of a completed retirement, with the public record's path.
pub fn of_retirement(retirement: &Retirement, at: DateTime<Utc>) -> Option<Notify> {
    let recipient = Recipient::for_owner(&retirement.owner, Some(&retirement.requested_by))?;
    let public = crate::retirement_worker::public_path(&retirement.retirement_id);
    Some(Notify {
        event: format!("retirement-completed:{}", retirement.retirement_id),
        kind: NotificationKind::RetirementCompleted,
        recipient,
        title: "Your credits are retired".to_owned(),
        body: format!(
            "{} of {} ({}) are retired on behalf of {}: serials {}. The public record and its PDF certificate are at {public} (verification hash {}).",
            tonnes(retirement.quantity),
            retirement.project_name,
            vintage_text(&retirement.vintage),
            retirement.beneficiary,
            retirement.serials.join(", "),
            retirement.verification_hash.as_deref().unwrap_or("-"),
        ),
        link: Some(public),
        at,
    })
}

/// Sends a notification (when there is one to send).
pub async fn send(queue: &dyn Queue, notice: Option<Notify>) -> Result<(), QueueError> {
    match notice {
        Some(notice) => notice.send(queue).await,
        None => Ok(()),
    }
}
