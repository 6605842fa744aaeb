//! The Stripe adapter against localstripe (started by the test command): customers, payment
//! intents with our metadata and amounts in minor units, their client secrets, confirmation
//! through localstripe's own test cards, cancelling, and refunds.

use amanar_marketplace::money::Money;
use amanar_orders::payments::{IntentStatus, NewIntent, PaymentError, Payments};
use amanar_stripe::StripePayments;
use amanar_testkit::{namespace, stripe_api_base};

fn stripe() -> StripePayments {
    StripePayments::new("sk_test_amanar", &stripe_api_base()).unwrap()
}

fn new_intent(order: &str, amount: &str, currency: &str, customer: Option<String>) -> NewIntent {
    NewIntent {
        order_id: order.into(),
        amount: Money::parse(amount, currency).unwrap(),
        customer,
        methods: vec!["card".into()],
        idempotency_key: format!("order:{order}"),
    }
}

/// Pays a payment intent as a buyer's browser would, with localstripe's test card.
async fn pay_with(payment_id: &str, card: &str) -> u16 {
    let http = reqwest::Client::new();
    let base = stripe_api_base();
    let attach = http
        .post(format!("{base}v1/payment_intents/{payment_id}"))
        .bearer_auth("sk_test_amanar")
        .form(&[("payment_method", card)])
        .send()
        .await
        .unwrap();
    assert!(
        attach.status().is_success(),
        "{}",
        attach.text().await.unwrap()
    );
    http.post(format!("{base}v1/payment_intents/{payment_id}/confirm"))
        .bearer_auth("sk_test_amanar")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_customer_and_a_payment_intent_are_made_read_paid_and_refunded() {
    let stripe = stripe();
    let owner = format!("USER#usr_{}", namespace());
    let customer = stripe
        .create_customer(&owner, &format!("customer:{owner}"))
        .await
        .unwrap();
    assert!(customer.starts_with("cus_"), "{customer}");

    let order = format!("ord_{}", namespace());
    let made = stripe
        .create_intent(&new_intent(&order, "25.50", "USD", Some(customer.clone())))
        .await
        .unwrap();
    assert!(made.id.starts_with("pi_"));
    assert_eq!((made.amount_minor, made.currency.as_str()), (2550, "usd"));
    assert_eq!(made.status, IntentStatus::RequiresPayment);
    assert!(
        made.client_secret.starts_with(&made.id),
        "a client secret of the intent"
    );
    let read = stripe.intent(&made.id).await.unwrap();
    assert_eq!(read, made);

    // Zero- and three-decimal currencies travel in their own minor units.
    let yen = stripe
        .create_intent(&new_intent(&format!("{order}y"), "1501", "JPY", None))
        .await
        .unwrap();
    assert_eq!(yen.amount_minor, 1501);
    let dinar = stripe
        .create_intent(&new_intent(&format!("{order}k"), "3.25", "KWD", None))
        .await
        .unwrap();
    assert_eq!(dinar.amount_minor, 3250);

    assert_eq!(pay_with(&made.id, "pm_card_visa").await, 200);
    assert_eq!(
        stripe.intent(&made.id).await.unwrap().status,
        IntentStatus::Succeeded
    );
    // Too late to cancel: it says it was paid.
    assert_eq!(
        stripe.cancel(&made.id).await.unwrap(),
        IntentStatus::Succeeded
    );
    let refund = stripe
        .refund(&made.id, &format!("refund:{order}"))
        .await
        .unwrap();
    assert!(refund.starts_with("re_"), "{refund}");
}

#[tokio::test]
async fn a_declined_intent_is_cancelled_and_unknown_ones_are_not_found() {
    let stripe = stripe();
    let order = format!("ord_{}", namespace());
    let made = stripe
        .create_intent(&new_intent(&order, "10", "EUR", None))
        .await
        .unwrap();
    // localstripe's card that fails when charged.
    assert_eq!(pay_with(&made.id, "pm_card_chargeCustomerFail").await, 402);
    assert_eq!(
        stripe.intent(&made.id).await.unwrap().status,
        IntentStatus::RequiresPayment
    );
    assert_eq!(
        stripe.cancel(&made.id).await.unwrap(),
        IntentStatus::Canceled
    );
    assert_eq!(
        stripe.cancel(&made.id).await.unwrap(),
        IntentStatus::Canceled
    );
    assert_eq!(
        stripe.intent("pi_missing").await.unwrap_err(),
        PaymentError::NotFound
    );
    let down = StripePayments::new("sk_test_amanar", "http://127.0.0.1:1/").unwrap();
    assert!(matches!(
        down.intent(&made.id).await,
        Err(PaymentError::Unavailable(_))
    ));
}

/// Stripe takes BHD, JOD, KWD, OMR and TND in whole tens of fils: an amount that is not is
/// refused before Stripe is asked, naming the rule; one that is goes through in minor units.
#[tokio::test]
async fn three_decimal_amounts_go_in_tens_of_the_minor_unit_or_are_refused_precisely() {
    let stripe = stripe();
    let refused = stripe
        .create_intent(&new_intent(
            &format!("ord_{}", namespace()),
            "3.251",
            "KWD",
            None,
        ))
        .await
        .unwrap_err();
    match refused {
        PaymentError::Refused(why) => assert!(why.contains("multiples of 0.010"), "{why}"),
        other => panic!("{other:?}"),
    }
    let made = stripe
        .create_intent(&new_intent(
            &format!("ord_{}", namespace()),
            "3.250",
            "KWD",
            None,
        ))
        .await
        .unwrap();
    assert_eq!((made.amount_minor, made.currency.as_str()), (3250, "kwd"));
}
