//! The payments port, and the local payment simulator behind it.
//!
//! The port is what an order needs from a payment provider: a customer per buyer, a payment
//! (Stripe's PaymentIntent) per order, its client secret for the buyer's browser, cancelling it
//! when the order expires, and a refund. Every call that creates something carries an idempotency
//! key derived from our own ids (`order:<orderId>`), never a random one, so a retried request or a
//! redelivered message never charges twice. The Stripe adapter is `amanar-stripe`.
//!
//! The simulator ([`LocalPayments`]) keeps its payments in the table and settles one when told
//! to (`POST /_local/payments/{paymentId}/confirm` or `/fail` in the local runtime): it builds the
//! event Stripe would send, signs it with the webhook secret, and the runtime delivers it through
//! the same webhook route as Stripe's.

use std::sync::Arc;

use amanar_core::table::{Condition, Table, TableError, Update, WriteOp, items};
use amanar_core::{Clock, keys};
use amanar_marketplace::money::Money;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::signature::{self, SigningSecrets};

/// What the provider says about a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for the buyer (Stripe: requires_payment_method, requires_confirmation,
    /// requires_action).
    RequiresPayment,
    /// Being processed (Stripe: processing, requires_capture).
    Processing,
    Succeeded,
    Canceled,
}

/// A payment at the provider. Its `Debug` leaves the client secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    /// What the buyer's browser confirms the payment with. Never stored by us, never logged.
    pub client_secret: String,
    pub status: IntentStatus,
    pub amount_minor: i64,
    /// Lower case, as Stripe writes it.
    pub currency: String,
}

impl std::fmt::Debug for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intent")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .finish_non_exhaustive()
    }
}

/// A payment to create for an order.
#[derive(Debug, Clone)]
pub struct NewIntent {
    pub order_id: String,
    pub amount: Money,
    pub customer: Option<String>,
    /// Payment method types to offer (`card`, `sepa_debit`, ...).
    pub methods: Vec<String>,
    /// `order:<orderId>`: the same order never makes a second payment.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or failed; the same call may succeed later.
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (a 4xx): retrying the same call fails the same way.
    #[error("the payment provider refused the request: {0}")]
    Refused(String),
    #[error("no such payment at the provider")]
    NotFound,
}

impl From<TableError> for PaymentError {
    fn from(error: TableError) -> Self {
        PaymentError::Unavailable(error.to_string())
    }
}

/// An amount in the minor units `provider` takes: ISO 4217's, except that Stripe writes ISK with
/// two decimals (ISO gives it none) and MGA with none (ISO gives it two; an amount with
/// hundredths is truncated here, and the Stripe adapter refuses it before it gets this far).
pub fn provider_minor_units(provider: &str, amount: &Money) -> i64 {
    let minor = amount.minor_units();
    match (provider, amount.currency()) {
        ("stripe", "ISK") => minor.saturating_mul(100),
        ("stripe", "MGA") => minor / 100,
        _ => minor,
    }
}

/// The payments port.
#[async_trait]
pub trait Payments: Send + Sync {
    /// `stripe` or `local`: how orders name the provider.
    fn provider(&self) -> &'static str;

    /// Creates the provider's customer for a buyer (`USER#<id>` or `ORG#<id>`); the caller keeps
    /// the mapping and calls this once per buyer, with a key derived from the buyer.
    async fn create_customer(
        &self,
        owner: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError>;

    async fn create_intent(&self, intent: &NewIntent) -> Result<Intent, PaymentError>;

    async fn intent(&self, payment_id: &str) -> Result<Intent, PaymentError>;

    /// Cancels a payment that has not succeeded. Returns the status it ends in: `Canceled`, or
    /// `Succeeded` (or `Processing`) when the buyer paid first, in which case nothing changed.
    async fn cancel(&self, payment_id: &str) -> Result<IntentStatus, PaymentError>;

    /// Refunds a succeeded payment in full; returns the refund's id.
    async fn refund(&self, payment_id: &str, idempotency_key: &str)
    -> Result<String, PaymentError>;
}

/// A payment of the simulator, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalPayment {
    id: String,
    order_id: String,
    amount_minor: i64,
    currency: String,
    customer: Option<String>,
    status: IntentStatus,
    /// A digest of what it was created with: the same key with other parameters is refused, as
    /// Stripe refuses it.
    request: String,
    #[serde(default)]
    refunded: bool,
}

/// A signed event, ready for the webhook route.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// How a simulated payment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Confirm,
    Fail,
}

/// The local payment simulator: payments in the table, events signed like Stripe's.
#[derive(Clone)]
pub struct LocalPayments {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    secret: Vec<u8>,
    webhook: SigningSecrets,
}

type HmacSha256 = Hmac<Sha256>;

fn short_hash(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())[..24].to_owned()
}

impl LocalPayments {
    /// `secret` makes client secrets (the local runtime's own secret); `webhook` signs events.
    pub fn new(
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        secret: &[u8],
        webhook: SigningSecrets,
    ) -> Self {
        Self {
            table,
            clock,
            secret: secret.to_vec(),
            webhook,
        }
    }

    fn client_secret(&self, id: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length");
        mac.update(b"client-secret\0");
        mac.update(id.as_bytes());
        let tag = hex::encode(mac.finalize().into_bytes());
        format!("{id}_secret_{}", &tag[..24])
    }

    async fn load(&self, payment_id: &str) -> Result<LocalPayment, PaymentError> {
        items::load(&*self.table, &keys::local_payment(payment_id))
            .await?
            .ok_or(PaymentError::NotFound)
    }

    fn view(&self, payment: &LocalPayment) -> Intent {
        Intent {
            id: payment.id.clone(),
            client_secret: self.client_secret(&payment.id),
            status: payment.status,
            amount_minor: payment.amount_minor,
            currency: payment.currency.clone(),
        }
    }

    /// Settles a payment as the buyer would (a card that pays, or one that is declined) and
    /// returns the event Stripe would send, signed. Confirming a succeeded payment sends its
    /// event again (a redelivery); a cancelled one cannot be paid.
    pub async fn settle(&self, payment_id: &str, how: Settle) -> Result<SignedEvent, SettleError> {
        let payment = self.load(payment_id).await.map_err(|e| match e {
            PaymentError::NotFound => SettleError::NotFound,
            other => SettleError::Payment(other),
        })?;
        let event_type = match (how, payment.status) {
            (_, IntentStatus::Canceled) => return Err(SettleError::State("canceled")),
            (Settle::Fail, IntentStatus::Succeeded) => return Err(SettleError::State("succeeded")),
            (Settle::Confirm, IntentStatus::Succeeded) => "payment_intent.succeeded",
            (Settle::Confirm, _) => {
                let op = WriteOp::update(
                    keys::local_payment(payment_id),
                    Update::new().set("status", json!(IntentStatus::Succeeded)),
                )
                .when(Condition::Equals("status".into(), json!(payment.status)));
                match self.table.write(vec![op]).await {
                    Ok(()) => {}
                    // Cancelled or paid meanwhile: say what it is now.
                    Err(TableError::ConditionFailed { .. }) => {
                        return Err(SettleError::State("changed"));
                    }
                    Err(e) => return Err(SettleError::Payment(e.into())),
                }
                "payment_intent.succeeded"
            }
            // A declined attempt leaves the payment waiting for another method, as in Stripe.
            (Settle::Fail, _) => "payment_intent.payment_failed",
        };
        let now = self.clock.now().timestamp();
        let status = if event_type == "payment_intent.succeeded" {
            "succeeded"
        } else {
            "requires_payment_method"
        };
        let mut object = json!({
            "id": payment.id,
            "object": "payment_intent",
            "amount": payment.amount_minor,
            "currency": payment.currency,
            "customer": payment.customer,
            "metadata": {"orderId": payment.order_id},
            "status": status,
        });
        if how == Settle::Fail {
            object["last_payment_error"] =
                json!({"code": "card_declined", "message": "Your card was declined."});
        }
        let event = json!({
            "id": amanar_core::new_id("evt_local"),
            "object": "event",
            "type": event_type,
            "created": now,
            "livemode": false,
            "data": {"object": object},
        });
        let payload = serde_json::to_vec(&event).expect("an event serialises");
        let signature = signature::sign(&payload, self.webhook.signing(), now);
        Ok(SignedEvent { payload, signature })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("no such payment")]
    NotFound,
    #[error("the payment is {0}")]
    State(&'static str),
    #[error(transparent)]
    Payment(PaymentError),
}

#[async_trait]
impl Payments for LocalPayments {
    fn provider(&self) -> &'static str {
        "local"
    }

    async fn create_customer(
        &self,
        _owner: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        Ok(format!("cus_local_{}", short_hash(&[idempotency_key])))
    }

    async fn create_intent(&self, intent: &NewIntent) -> Result<Intent, PaymentError> {
        let id = format!("pi_local_{}", short_hash(&[&intent.idempotency_key]));
        let currency = intent.amount.currency().to_ascii_lowercase();
        let request = short_hash(&[
            &intent.order_id,
            &intent.amount.minor_units().to_string(),
            &currency,
            intent.customer.as_deref().unwrap_or(""),
        ]);
        let payment = LocalPayment {
            id: id.clone(),
            order_id: intent.order_id.clone(),
            amount_minor: intent.amount.minor_units(),
            currency,
            customer: intent.customer.clone(),
            status: IntentStatus::RequiresPayment,
            request: request.clone(),
            refunded: false,
        };
        let put = WriteOp::put(items::with_key(&keys::local_payment(&id), &payment)?)
            .when(Condition::NotExists);
        match self.table.write(vec![put]).await {
            Ok(()) => Ok(self.view(&payment)),
            Err(TableError::ConditionFailed { .. }) => {
                let stored = self.load(&id).await?;
                if stored.request != request {
                    return Err(PaymentError::Refused(
                        "idempotency key reused with other parameters".into(),
                    ));
                }
                Ok(self.view(&stored))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn intent(&self, payment_id: &str) -> Result<Intent, PaymentError> {
        Ok(self.view(&self.load(payment_id).await?))
    }

    async fn cancel(&self, payment_id: &str) -> Result<IntentStatus, PaymentError> {
        loop {
            let payment = self.load(payment_id).await?;
            if matches!(
                payment.status,
                IntentStatus::Succeeded | IntentStatus::Canceled
            ) {
                return Ok(payment.status);
            }
            let op = WriteOp::update(
                keys::local_payment(payment_id),
                Update::new().set("status", json!(IntentStatus::Canceled)),
            )
            .when(Condition::Equals("status".into(), json!(payment.status)));
            match self.table.write(vec![op]).await {
                Ok(()) => return Ok(IntentStatus::Canceled),
                Err(TableError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn refund(
        &self,
        payment_id: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        let payment = self.load(payment_id).await?;
        if payment.status != IntentStatus::Succeeded {
            return Err(PaymentError::Refused(
                "only a succeeded payment is refunded".into(),
            ));
        }
        let op = WriteOp::update(
            keys::local_payment(payment_id),
            Update::new().set("refunded", true),
        );
        self.table.write(vec![op]).await?;
        Ok(format!("re_local_{}", short_hash(&[idempotency_key])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_amounts_follow_iso_except_stripes_isk_and_intents_never_print_their_secret() {
        let money = |a: &str, c: &str| Money::parse(a, c).unwrap();
        assert_eq!(provider_minor_units("stripe", &money("12.50", "USD")), 1250);
        assert_eq!(provider_minor_units("stripe", &money("1500", "JPY")), 1500);
        assert_eq!(provider_minor_units("stripe", &money("3.250", "KWD")), 3250);
        assert_eq!(provider_minor_units("stripe", &money("500", "ISK")), 50000);
        assert_eq!(provider_minor_units("local", &money("500", "ISK")), 500);
        assert_eq!(provider_minor_units("stripe", &money("1500", "MGA")), 1500);
        assert_eq!(provider_minor_units("local", &money("1500", "MGA")), 150000);
        let intent = Intent {
            id: "pi_1".into(),
            client_secret: "pi_1_secret_abc".into(),
            status: IntentStatus::RequiresPayment,
            amount_minor: 1,
            currency: "usd".into(),
        };
        assert!(!format!("{intent:?}").contains("secret_abc"));
    }
}
