//! The Stripe adapter of the payments port, on async-stripe (the `async-stripe` 1.0 family).
//!
//! Every call that creates something sends an idempotency key derived from our own ids
//! (`order:<orderId>`, `customer:<owner>`, `refund:<orderId>`), never async-stripe's random
//! retry keys, so a retried Lambda or a redelivered message never charges twice.
//!
//! Two workarounds, both about async-stripe 1.0.0-rc.10:
//! - its `CreatePaymentIntent` has no `payment_method_types` (it targets an API version that
//!   replaced it with `allowed_payment_method_types`, which Stripe accounts on older versions and
//!   localstripe refuse), so the payment intent is created with the crate's own request builder
//!   and a form of ours ([`NewPaymentIntent`]), through the same client, key, retries and errors;
//! - its `PaymentIntent` type requires fields that localstripe (and older API versions) leave
//!   out, so payment intents are read into [`IntentBody`], the few fields the port needs.
//!
//! Amounts: Stripe takes minor units, as ISO 4217 defines them, except ISK, which Stripe writes
//! with two decimals, and MGA, which it writes with none (`payments::provider_minor_units`); it
//! takes BHD, JOD, KWD, OMR and TND only in tens of their minor unit.

use std::collections::HashMap;

use amanar_orders::payments::{
    Intent, IntentStatus, NewIntent, PaymentError, Payments, provider_minor_units,
};
use async_trait::async_trait;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{CancelPaymentIntent, RetrievePaymentIntent};
use stripe_core::refund::CreateRefund;

/// Stripe, or any server speaking its API (localstripe in tests).
pub struct StripePayments {
    client: Client,
}

impl StripePayments {
    /// `api_base` is Stripe's (`https://api.stripe.com/`) unless a test points elsewhere.
    pub fn new(secret_key: &str, api_base: &str) -> Result<Self, String> {
        // async-stripe's hyper-rustls asks rustls for the process-wide crypto provider, and with
        // both ring and aws-lc-rs linked (the workspace links both) rustls refuses to guess and
        // panics. aws-lc-rs is the AWS SDK's own; installing it twice is a harmless no-op.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // The crate joins `<base>v1/...`: the base must end in a slash.
        let base = if api_base.ends_with('/') {
            api_base.to_owned()
        } else {
            format!("{api_base}/")
        };
        let client = ClientBuilder::new(secret_key)
            .url(base)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

/// The form of a new payment intent (see the module's notes).
#[derive(serde::Serialize)]
struct NewPaymentIntent<'a> {
    amount: i64,
    currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    payment_method_types: &'a [String],
    metadata: HashMap<&'static str, &'a str>,
}

/// The fields of a payment intent the port reads.
#[derive(Debug, miniserde::Deserialize)]
struct IntentBody {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    client_secret: Option<String>,
}

fn status(stripe: &str) -> IntentStatus {
    match stripe {
        "succeeded" => IntentStatus::Succeeded,
        "canceled" => IntentStatus::Canceled,
        "processing" | "requires_capture" => IntentStatus::Processing,
        _ => IntentStatus::RequiresPayment,
    }
}

fn intent(body: IntentBody) -> Intent {
    Intent {
        client_secret: body.client_secret.unwrap_or_default(),
        status: status(&body.status),
        id: body.id,
        amount_minor: body.amount,
        currency: body.currency,
    }
}

/// A 4xx from Stripe is a refusal (the same call fails again); 404 is a missing object; the rest
/// (network, timeouts, 429, 5xx) may pass.
fn error(e: StripeError) -> PaymentError {
    match e {
        StripeError::Stripe(_, 404) => PaymentError::NotFound,
        StripeError::Stripe(api, status) if (400..500).contains(&status) && status != 429 => {
            PaymentError::Refused(format!(
                "{status} {:?}: {}",
                api.code,
                api.message.unwrap_or_default()
            ))
        }
        other => PaymentError::Unavailable(other.to_string()),
    }
}

fn key(text: &str) -> Result<RequestStrategy, PaymentError> {
    let key = IdempotencyKey::new(text).map_err(|e| PaymentError::Refused(e.to_string()))?;
    Ok(RequestStrategy::Idempotent(key))
}

/// The currencies Stripe charges with three decimals, whose amounts it takes only in tens of
/// their minor unit (<https://docs.stripe.com/currencies#three-decimal>).
const THREE_DECIMAL: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

#[async_trait]
impl Payments for StripePayments {
    fn provider(&self) -> &'static str {
        "stripe"
    }

    async fn create_customer(
        &self,
        owner: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        let customer = CreateCustomer::new()
            .metadata(HashMap::from([("owner".to_owned(), owner.to_owned())]))
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(error)?;
        Ok(customer.id.as_str().to_owned())
    }

    async fn create_intent(&self, new: &NewIntent) -> Result<Intent, PaymentError> {
        let amount = provider_minor_units("stripe", &new.amount);
        // Stripe takes the three-decimal currencies only in whole tens of their minor unit (its
        // card partners settle them so), and MGA in whole ariary: say so precisely instead of
        // passing on its refusal (or truncating).
        let currency = new.amount.currency();
        let step = match currency {
            c if THREE_DECIMAL.contains(&c) => Some(("0.010", 10)),
            "MGA" => Some(("1", 100)),
            _ => None,
        };
        if let Some((unit, minor)) = step
            && new.amount.minor_units() % minor != 0
        {
            return Err(PaymentError::Refused(format!(
                "Stripe takes {currency} amounts only in multiples of {unit}; this total is {}",
                new.amount.amount()
            )));
        }
        let form = NewPaymentIntent {
            amount,
            currency: new.amount.currency().to_ascii_lowercase(),
            customer: new.customer.as_deref(),
            payment_method_types: &new.methods,
            metadata: HashMap::from([("orderId", new.order_id.as_str())]),
        };
        let body: IntentBody = RequestBuilder::new(StripeMethod::Post, "/payment_intents")
            .form(&form)
            .customize()
            .request_strategy(key(&new.idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(error)?;
        Ok(intent(body))
    }

    async fn intent(&self, payment_id: &str) -> Result<Intent, PaymentError> {
        let body: IntentBody = RetrievePaymentIntent::new(payment_id)
            .build()
            .customize()
            .send(&self.client)
            .await
            .map_err(error)?;
        Ok(intent(body))
    }

    async fn cancel(&self, payment_id: &str) -> Result<IntentStatus, PaymentError> {
        let current = self.intent(payment_id).await?;
        if matches!(
            current.status,
            IntentStatus::Succeeded | IntentStatus::Canceled | IntentStatus::Processing
        ) {
            return Ok(current.status);
        }
        let cancelled: Result<IntentBody, _> = CancelPaymentIntent::new(payment_id)
            .build()
            .customize()
            .send(&self.client)
            .await;
        match cancelled {
            Ok(body) => Ok(status(&body.status)),
            // Paid between the read and the cancel: Stripe refuses; say what it is now.
            Err(StripeError::Stripe(_, 400)) => Ok(self.intent(payment_id).await?.status),
            Err(e) => Err(error(e)),
        }
    }

    async fn refund(
        &self,
        payment_id: &str,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        let refund = CreateRefund::new()
            .payment_intent(payment_id)
            .customize()
            .request_strategy(key(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(error)?;
        Ok(refund.id.as_str().to_owned())
    }
}
