//! Buying credits through the local runtime over HTTP: a buyer finds a listing in the catalogue,
//! orders 3 t, the payment simulator confirms through the signed webhook, and the holding shows
//! the exact serials; a declined payment and an expired order each give their credits back;
//! another buyer sees none of it; the webhook refuses what its signature does not cover and
//! handles an event sent five times once. An order placed with `retire: true` ends in a
//! retirement of exact serials whose public record and PDF certificate agree.

use std::time::{Duration, Instant};

use amanar_journeys::{Api, As, Platform, vars};
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "whsec_journey_test";

/// The local runtime with the demo catalogue, short-lived orders and a fast housekeeping tick.
async fn platform() -> (amanar_local::Running, tempfile::TempDir) {
    seeded(
        Platform::new()
            .set(vars::ORDER_TTL_SECS, "2")
            .set(vars::HOUSEKEEPING_SECS, "1"),
    )
    .await
}

/// `platform` started with the journeys' webhook secret, its demo catalogue seeded.
async fn seeded(platform: Platform) -> (amanar_local::Running, tempfile::TempDir) {
    let (running, dir) = platform
        .set(vars::STRIPE_WEBHOOK_SECRET, WEBHOOK_SECRET)
        .start()
        .await;
    let ports = running.ports();
    amanar_marketplace::demo::seed(ports.table.clone(), &Default::default(), ports.clock.now())
        .await
        .expect("the demo catalogue");
    (running, dir)
}

/// A catalogue offer with at least `tonnes` available: (listing id, unit price amount).
async fn offer(api: &Api, tonnes: u64) -> (String, String) {
    let found = api
        .get(
            &format!("/v1/projects?minAvailable={tonnes}&limit=50"),
            As::Anonymous,
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    for project in found.body["items"].as_array().unwrap() {
        for offer in project["offers"].as_array().unwrap() {
            if offer["available"].as_u64().unwrap() >= tonnes
                && offer["unitPrice"]["currency"] == "USD"
            {
                return (
                    offer["listingId"].as_str().unwrap().to_owned(),
                    offer["unitPrice"]["amount"].as_str().unwrap().to_owned(),
                );
            }
        }
    }
    panic!("no USD offer of {tonnes} t in {:#}", found.body);
}

async fn available(api: &Api, token: &str, listing: &str) -> u64 {
    let listing = api
        .get(&format!("/v1/listings/{listing}"), As::Bearer(token))
        .await;
    assert_eq!(listing.status, 200, "{}", listing.body);
    listing.body["available"].as_u64().unwrap()
}

/// Polls an order until it leaves `pending_payment`.
async fn settled(api: &Api, token: &str, order: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = api
            .get(&format!("/v1/orders/{order}"), As::Bearer(token))
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        if got.body["status"] != "pending_payment" {
            return got.body;
        }
        assert!(Instant::now() < deadline, "still pending: {:#}", got.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn place(api: &Api, token: &str, key: &str, body: Value) -> amanar_journeys::Answer {
    api.call_with(
        "POST",
        "/v1/orders",
        As::Bearer(token),
        Some(body),
        &[("Idempotency-Key", key)],
    )
    .await
}

/// The payment simulator confirms (`"confirm"`) or declines (`"fail"`) a payment, through the
/// signed webhook.
async fn simulate(api: &Api, payment: &str, outcome: &str) -> amanar_journeys::Answer {
    api.post(
        &format!("/_local/payments/{payment}/{outcome}"),
        As::Anonymous,
        json!({}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_orders_pays_and_holds_exact_serials_and_unpaid_orders_give_their_credits_back() {
    let (running, _dir) = platform().await;
    let api = Api::new(&running);
    let (_, buyer) = api.user("buyer@orders.example", "individual").await;
    let (_, stranger) = api.user("stranger@orders.example", "business").await;
    let (listing, unit_price) = offer(&api, 10).await;
    let before = available(&api, &buyer, &listing).await;

    // Bad orders name their field, and reserve nothing.
    for (body, field) in [
        (json!({"listingId": listing, "quantity": 0}), "quantity"),
        (json!({"listingId": listing}), "quantity"),
        (
            json!({"listingId": listing, "quantity": 1, "retire": true}),
            "beneficiary",
        ),
        (
            json!({"listingId": listing, "quantity": 1, "beneficiary": "Acme"}),
            "retire",
        ),
        (
            json!({"lines": [{"listingId": listing, "quantity": 1}, {"listingId": listing, "quantity": 2}]}),
            "lines[1].listingId",
        ),
        (json!({"listingId": "lst_nope", "quantity": 1}), "listingId"),
    ] {
        let refused = place(&api, &buyer, "bad", body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(
            refused.body["errors"][0]["field"], field,
            "{}",
            refused.body
        );
    }
    let too_many = place(
        &api,
        &buyer,
        "big",
        json!({"listingId": listing, "quantity": before + 1}),
    )
    .await;
    assert_eq!(too_many.status, 409, "{}", too_many.body);
    assert!(
        too_many.body["detail"].as_str().unwrap().contains(&listing)
            && too_many.body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{before} t available")),
        "{}",
        too_many.body
    );
    assert_eq!(available(&api, &buyer, &listing).await, before);

    // Order 3 t: reserved at once, priced per line with the fee apart.
    let body = json!({"listingId": listing, "quantity": 3});
    let placed = place(&api, &buyer, "order-1", body.clone()).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(placed.body["status"], "pending_payment");
    assert_eq!(placed.header("location"), format!("/v1/orders/{order}"));
    assert_eq!(placed.header("cache-control"), "no-store");
    let payment = &placed.body["payment"];
    assert_eq!(payment["provider"], "local");
    let payment_id = payment["paymentId"].as_str().unwrap().to_owned();
    assert!(
        payment["clientSecret"]
            .as_str()
            .unwrap()
            .starts_with(&payment_id)
    );
    let price: rust_decimal::Decimal = unit_price.parse().unwrap();
    assert_eq!(
        placed.body["lines"][0]["price"]["amount"],
        format!("{:.2}", price * rust_decimal::Decimal::from(3))
    );
    assert_eq!(placed.body["feeRatePercent"], "5.00");
    assert_eq!(available(&api, &buyer, &listing).await, before - 3);

    // A retry with the key is the same order; the key with another body is refused.
    let again = place(&api, &buyer, "order-1", body).await;
    assert_eq!(
        (again.status, again.header("idempotent-replayed")),
        (201, "true")
    );
    assert_eq!(again.body["orderId"], order.as_str());
    assert_eq!(again.body["payment"]["paymentId"], payment_id.as_str());
    let reused = place(
        &api,
        &buyer,
        "order-1",
        json!({"listingId": listing, "quantity": 4}),
    )
    .await;
    assert_eq!(reused.status, 409, "{}", reused.body);
    assert_eq!(available(&api, &buyer, &listing).await, before - 3);

    // Another buyer sees nothing of it.
    assert_eq!(
        api.get(&format!("/v1/orders/{order}"), As::Bearer(&stranger))
            .await
            .status,
        404
    );

    // The simulator pays through the webhook; the worker completes the order.
    let paid = simulate(&api, &payment_id, "confirm").await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["webhookStatus"], 200, "{}", paid.body);
    let done = settled(&api, &buyer, &order).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let serials = done["lines"][0]["serials"].clone();
    assert!(!serials.as_array().unwrap().is_empty(), "{done:#}");
    let holding_id = done["lines"][0]["holdingId"].as_str().unwrap().to_owned();
    assert!(
        done["payment"].get("clientSecret").is_none(),
        "no secret once paid"
    );

    let holdings = api.get("/v1/holdings", As::Bearer(&buyer)).await;
    assert_eq!(holdings.status, 200, "{}", holdings.body);
    let held = &holdings.body["items"][0];
    assert_eq!(held["holdingId"], holding_id.as_str());
    assert_eq!(
        (held["quantity"].as_u64(), held["available"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(held["heldSerials"], serials);
    assert_eq!(held["orderId"], order.as_str());
    let serial = serials[0].as_str().unwrap();
    let lookup = api
        .get(
            &format!("/v1/credits/lookup?serial={serial}"),
            As::Bearer(&buyer),
        )
        .await;
    assert_eq!(lookup.status, 200, "{}", lookup.body);
    assert!(
        lookup.body.to_string().contains("\"held\""),
        "{}",
        lookup.body
    );

    let receipt = api
        .get(&format!("/v1/orders/{order}/receipt"), As::Bearer(&buyer))
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["lines"][0]["serials"], serials);
    assert_eq!(receipt.body["total"], done["total"]);
    // The same receipt as a PDF, by query or by Accept header.
    for (query, accept) in [("?format=pdf", "*/*"), ("", "application/pdf")] {
        let pdf = api
            .http
            .get(format!("{}/v1/orders/{order}/receipt{query}", api.base))
            .bearer_auth(&buyer)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(pdf.status(), 200);
        assert_eq!(pdf.headers()["content-type"], "application/pdf");
        let bytes = pdf.bytes().await.unwrap();
        let document = lopdf::Document::load_mem(&bytes).expect("a PDF");
        let printed = document.extract_text(&[1]).expect("its text");
        let total = format!(
            "{} {}",
            done["total"]["amount"].as_str().unwrap(),
            done["total"]["currency"].as_str().unwrap()
        );
        for expected in [order.as_str(), serials[0].as_str().unwrap(), total.as_str()] {
            assert!(printed.contains(expected), "{expected:?} not in {printed}");
        }
    }
    let unknown = api
        .get(
            &format!("/v1/orders/{order}/receipt?format=docx"),
            As::Bearer(&buyer),
        )
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(
        api.get(&format!("/v1/holdings/{holding_id}"), As::Bearer(&stranger))
            .await
            .status,
        404
    );
    assert_eq!(
        api.get(
            &format!("/v1/orders/{order}/receipt"),
            As::Bearer(&stranger)
        )
        .await
        .status,
        404
    );

    // The payment confirmed again (a redelivery): nothing moves twice.
    let twice = simulate(&api, &payment_id, "confirm").await;
    assert_eq!(twice.status, 200, "{}", twice.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let holdings = api.get("/v1/holdings", As::Bearer(&buyer)).await;
    assert_eq!(holdings.body["items"].as_array().unwrap().len(), 1);

    // A declined payment gives the credits back.
    let declined = place(
        &api,
        &buyer,
        "order-2",
        json!({"listingId": listing, "quantity": 2}),
    )
    .await;
    assert_eq!(declined.status, 201, "{}", declined.body);
    assert_eq!(available(&api, &buyer, &listing).await, before - 5);
    let declined_payment = declined.body["payment"]["paymentId"].as_str().unwrap();
    let failed = simulate(&api, declined_payment, "fail").await;
    assert_eq!(failed.status, 200, "{}", failed.body);
    let declined = settled(&api, &buyer, declined.body["orderId"].as_str().unwrap()).await;
    assert_eq!(declined["status"], "payment_failed", "{declined:#}");
    assert_eq!(available(&api, &buyer, &listing).await, before - 3);
    // The declined payment cannot be paid afterwards: it was cancelled.
    let late = simulate(&api, declined_payment, "confirm").await;
    assert_eq!(late.status, 409, "{}", late.body);

    // An order nobody pays expires and gives its credits back.
    let unpaid = place(
        &api,
        &buyer,
        "order-3",
        json!({"listingId": listing, "quantity": 1}),
    )
    .await;
    assert_eq!(unpaid.status, 201, "{}", unpaid.body);
    assert_eq!(available(&api, &buyer, &listing).await, before - 4);
    let expired = settled(&api, &buyer, unpaid.body["orderId"].as_str().unwrap()).await;
    assert_eq!(expired["status"], "expired", "{expired:#}");
    assert_eq!(available(&api, &buyer, &listing).await, before - 3);
    // The buyer is told of each ending.
    let failed_notice = notified(
        &api,
        &buyer,
        "payment_failed",
        declined["orderId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(failed_notice["title"], "Your payment did not go through");
    notified(
        &api,
        &buyer,
        "order_expired",
        expired["orderId"].as_str().unwrap(),
    )
    .await;

    let mine = api.get("/v1/orders?limit=2", As::Bearer(&buyer)).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    assert!(mine.body["nextCursor"].is_string());
    assert_eq!(
        api.get("/v1/orders", As::Bearer(&stranger)).await.body["items"],
        json!([])
    );
    running.shutdown().await;
}

fn sign(payload: &str, secret: &str, at: i64) -> String {
    amanar_orders::signature::sign(payload.as_bytes(), secret.as_bytes(), at)
}

async fn deliver(api: &Api, payload: &str, signature: Option<&str>) -> amanar_journeys::Answer {
    let mut request = api
        .http
        .post(format!("{}/v1/webhooks/stripe", api.base))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    amanar_journeys::Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_trusts_only_signed_events_and_handles_each_once_in_any_order() {
    let (running, _dir) = platform().await;
    let api = Api::new(&running);
    let (_, buyer) = api.user("webhook@orders.example", "individual").await;
    let (listing, _) = offer(&api, 5).await;
    let placed = place(
        &api,
        &buyer,
        "w-1",
        json!({"listingId": listing, "quantity": 2}),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    let payment = placed.body["payment"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let amount = {
        let total = placed.body["total"]["amount"].as_str().unwrap();
        total.replace('.', "").parse::<i64>().unwrap()
    };
    let now = chrono::Utc::now().timestamp();
    let event = |id: &str, kind: &str| {
        json!({
            "id": id, "object": "event", "type": kind, "created": now,
            "data": {"object": {"id": payment, "object": "payment_intent", "amount": amount,
                "currency": "usd", "metadata": {"orderId": order}}}
        })
        .to_string()
    };
    let succeeded = event("evt_journey_1", "payment_intent.succeeded");

    // Refused: no header, a tampered body, the wrong secret, an old signature.
    assert_eq!(deliver(&api, &succeeded, None).await.status, 400);
    let good = sign(&succeeded, WEBHOOK_SECRET, now);
    let tampered = succeeded.replace("\"amount\":", "\"amount\": ");
    assert_eq!(deliver(&api, &tampered, Some(&good)).await.status, 400);
    assert_eq!(
        deliver(
            &api,
            &succeeded,
            Some(&sign(&succeeded, "whsec_other", now))
        )
        .await
        .status,
        400
    );
    let stale = deliver(
        &api,
        &succeeded,
        Some(&sign(&succeeded, WEBHOOK_SECRET, now - 301)),
    )
    .await;
    assert_eq!(stale.status, 400);
    assert_eq!(
        stale.body["type"].as_str().unwrap().rsplit('/').next(),
        Some("bad-signature")
    );
    assert_eq!(
        api.get(&format!("/v1/orders/{order}"), As::Bearer(&buyer))
            .await
            .body["status"],
        "pending_payment",
        "nothing unsigned moved the order"
    );

    // Several v1 (a rotation) with one valid; then the same event four more times.
    let valid_sig = good.split_once(",v1=").unwrap().1;
    let rotated = format!("t={now},v1={},v1={valid_sig}", "0".repeat(64));
    let first = deliver(&api, &succeeded, Some(&rotated)).await;
    assert_eq!(
        (first.status, &first.body["duplicate"]),
        (200, &json!(false)),
        "{}",
        first.body
    );
    for _ in 0..4 {
        let again = deliver(&api, &succeeded, Some(&good)).await;
        assert_eq!(
            (again.status, &again.body["duplicate"]),
            (200, &json!(true))
        );
    }
    let done = settled(&api, &buyer, &order).await;
    assert_eq!(done["status"], "completed");

    // A failure arriving after the success never un-pays the order.
    let failed = event("evt_journey_2", "payment_intent.payment_failed");
    let late = deliver(&api, &failed, Some(&sign(&failed, WEBHOOK_SECRET, now))).await;
    assert_eq!(late.status, 200);
    // Unknown event types are acknowledged.
    let other = json!({"id": "evt_journey_3", "type": "customer.created", "created": now, "data": {"object": {}}}).to_string();
    let ack = deliver(&api, &other, Some(&sign(&other, WEBHOOK_SECRET, now))).await;
    assert_eq!((ack.status, &ack.body["handled"]), (200, &json!(false)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = api
        .get(&format!("/v1/orders/{order}"), As::Bearer(&buyer))
        .await;
    assert_eq!(after.body["status"], "completed");
    let holdings = api.get("/v1/holdings", As::Bearer(&buyer)).await;
    assert_eq!(
        holdings.body["items"].as_array().unwrap().len(),
        1,
        "one allocation"
    );
    assert_eq!(holdings.body["items"][0]["quantity"], 2);
    running.shutdown().await;
}

/// Polls a retirement until it is completed.
async fn retired(api: &Api, token: &str, retirement: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = api
            .get(&format!("/v1/retirements/{retirement}"), As::Bearer(token))
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        if got.body["status"] == "completed" {
            return got.body;
        }
        assert!(Instant::now() < deadline, "not completed: {:#}", got.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_to_retire_ends_in_a_public_record_and_a_certificate_that_agree() {
    let (running, _dir) = platform().await;
    let api = Api::new(&running);
    let (_, buyer) = api.user("retirer@orders.example", "individual").await;
    let (_, stranger) = api.user("nosy@orders.example", "business").await;
    let (listing, _) = offer(&api, 10).await;

    let placed = place(
        &api,
        &buyer,
        "retire-1",
        json!({"listingId": listing, "quantity": 3, "retire": true,
               "beneficiary": "Zoë Ørsted Bakery", "reason": "2026 deliveries"}),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    let payment_id = placed.body["payment"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let paid = simulate(&api, &payment_id, "confirm").await;
    assert!(paid.status < 300, "{}", paid.body);
    let completed = settled(&api, &buyer, &order).await;
    assert_eq!(completed["status"], "completed", "{completed:#}");
    let retirement = completed["retirementId"].as_str().unwrap().to_owned();
    assert_eq!(completed["lines"][0]["retirementId"], retirement.as_str());
    let serials = completed["lines"][0]["serials"].clone();

    // The owner follows it to completion; a stranger sees nothing.
    let done = retired(&api, &buyer, &retirement).await;
    assert_eq!(done["quantity"], 3);
    assert_eq!(
        done["serials"], serials,
        "the serials bought are the ones retired"
    );
    assert_eq!(
        api.get(
            &format!("/v1/retirements/{retirement}"),
            As::Bearer(&stranger)
        )
        .await
        .status,
        404
    );

    // The holding's credits are retired: none held, none left to retire again.
    let holding = completed["lines"][0]["holdingId"].as_str().unwrap();
    let held = api
        .get(&format!("/v1/holdings/{holding}"), As::Bearer(&buyer))
        .await;
    assert_eq!(held.body["available"], 0, "{}", held.body);
    let again = api
        .call_with(
            "POST",
            "/v1/retirements",
            As::Bearer(&buyer),
            Some(json!({"holdingId": holding, "quantity": 1, "beneficiary": "Again"})),
            &[("Idempotency-Key", "again")],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);

    // From a plain purchase, retire part of a holding: the lowest serials, once per key.
    let plain = place(
        &api,
        &buyer,
        "plain-1",
        json!({"listingId": listing, "quantity": 3}),
    )
    .await;
    assert_eq!(plain.status, 201, "{}", plain.body);
    let plain_payment = plain.body["payment"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain_order = plain.body["orderId"].as_str().unwrap().to_owned();
    simulate(&api, &plain_payment, "confirm").await;
    let bought = settled(&api, &buyer, &plain_order).await;
    let plain_holding = bought["lines"][0]["holdingId"].as_str().unwrap().to_owned();
    let request = |key: &'static str, body: Value| {
        let (api, buyer) = (&api, &buyer);
        async move {
            api.call_with(
                "POST",
                "/v1/retirements",
                As::Bearer(buyer),
                Some(body),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    let body = json!({"holdingId": plain_holding, "quantity": 2, "beneficiary": "Acme"});
    for (bad, field) in [
        (
            json!({"holdingId": plain_holding, "quantity": 0, "beneficiary": "Acme"}),
            "quantity",
        ),
        (
            json!({"holdingId": plain_holding, "quantity": 1, "beneficiary": " "}),
            "beneficiary",
        ),
    ] {
        let refused = request("bad", bad).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(refused.body["errors"][0]["field"], field);
    }
    let first = request("part-1", body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let part = first.body["retirementId"].as_str().unwrap().to_owned();
    assert_eq!(first.header("location"), format!("/v1/retirements/{part}"));
    let replay = request("part-1", body).await;
    assert_eq!(
        (replay.status, replay.header("idempotent-replayed")),
        (202, "true")
    );
    assert_eq!(replay.body["retirementId"], part.as_str());
    let reused = request(
        "part-1",
        json!({"holdingId": plain_holding, "quantity": 1, "beneficiary": "Acme"}),
    )
    .await;
    assert_eq!(reused.status, 409, "{}", reused.body);
    let stranger_try = api
        .call_with(
            "POST",
            "/v1/retirements",
            As::Bearer(&stranger),
            Some(json!({"holdingId": plain_holding, "quantity": 1, "beneficiary": "Me"})),
            &[("Idempotency-Key", "steal")],
        )
        .await;
    assert_eq!(stranger_try.status, 404, "{}", stranger_try.body);
    let part_done = retired(&api, &buyer, &part).await;
    let bought_serials = bought["lines"][0]["serials"].as_array().unwrap();
    assert_eq!(bought_serials.len(), 1, "{bought:#}");
    let held = api
        .get(&format!("/v1/holdings/{plain_holding}"), As::Bearer(&buyer))
        .await;
    assert_eq!(held.body["available"], 1, "{}", held.body);
    assert_eq!(held.body["unretired"], 1, "{}", held.body);
    assert_eq!(part_done["quantity"], 2);
    assert_ne!(
        part_done["serials"][0], bought_serials[0],
        "a sub-range was split off"
    );

    // The public record: no account, a hash anyone can recompute.
    let public = api
        .get(
            &format!("/v1/public/retirements/{retirement}"),
            As::Anonymous,
        )
        .await;
    assert_eq!(public.status, 200, "{}", public.body);
    let text = public.body.to_string();
    assert!(
        !text.contains("USER#") && !text.contains("retirer@"),
        "{text}"
    );
    assert_eq!(public.body["beneficiary"], "Zoë Ørsted Bakery");
    assert_eq!(public.body["serials"], serials);
    let hash = public.body["verificationHash"].as_str().unwrap().to_owned();
    let canonical = public.body["verification"]["canonical"].as_str().unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(canonical.as_bytes())),
        hash
    );

    // The certificate prints the same record and hash.
    let url = public.body["certificateUrl"].as_str().unwrap();
    let pdf = api
        .http
        .get(format!("{}{url}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    let document = lopdf::Document::load_mem(&bytes).expect("a PDF");
    let printed = document.extract_text(&[1]).expect("its text");
    for expected in [
        hash.as_str(),
        retirement.as_str(),
        "Zoë Ørsted Bakery",
        "2026 deliveries",
        "3 tCO2e",
        serials[0].as_str().unwrap(),
    ] {
        assert!(printed.contains(expected), "{expected:?} not in {printed}");
    }

    // The buyer was told at each step, in the app and by email; a stranger has nothing.
    let order_notice = notified(&api, &buyer, "order_completed", &order).await;
    let retired_notice = notified(&api, &buyer, "retirement_completed", &retirement).await;
    assert!(
        retired_notice["body"].as_str().unwrap().contains(&hash),
        "the notice names the verification hash: {retired_notice:#}"
    );
    assert_eq!(order_notice["readAt"], Value::Null);
    let id = order_notice["notificationId"].as_str().unwrap();
    let read = api
        .post(
            &format!("/v1/notifications/{id}/read"),
            As::Bearer(&buyer),
            json!({}),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(read.body["readAt"].is_string(), "{}", read.body);
    let read_again = api
        .post(
            &format!("/v1/notifications/{id}/read"),
            As::Bearer(&buyer),
            json!({}),
        )
        .await;
    assert_eq!(read_again.body["readAt"], read.body["readAt"]);
    assert_eq!(
        api.post(
            &format!("/v1/notifications/{id}/read"),
            As::Bearer(&stranger),
            json!({})
        )
        .await
        .status,
        404,
        "another user's notification"
    );
    let theirs = api.get("/v1/notifications", As::Bearer(&stranger)).await;
    assert_eq!(theirs.body["items"], json!([]), "{}", theirs.body);
    // Two orders completed and two retirements: one email each, never two.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mail = api
            .get("/_local/mailbox?to=retirer@orders.example", As::Anonymous)
            .await;
        let subjects: Vec<String> = mail.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_owned())
            .collect();
        let count = |subject: &str| subjects.iter().filter(|s| *s == subject).count();
        let (orders, retirements) = (
            count("Your order is complete"),
            count("Your credits are retired"),
        );
        assert!(orders <= 2 && retirements <= 2, "{subjects:?}");
        if (orders, retirements) == (2, 2) {
            break;
        }
        assert!(Instant::now() < deadline, "mail missing: {subjects:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Verified-buyer ratings: the buyer rates once and may change it; a stranger may not.
    let project = completed["lines"][0]["projectId"].as_str().unwrap();
    let path = format!("/v1/projects/{project}/ratings");
    let refused = api
        .post(
            &path,
            As::Bearer(&stranger),
            json!({"stars": 5, "text": "!"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let bad = api
        .post(&path, As::Bearer(&buyer), json!({"stars": 6}))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let rated = api
        .post(
            &path,
            As::Bearer(&buyer),
            json!({"stars": 2, "text": "Slow paperwork"}),
        )
        .await;
    assert_eq!(rated.status, 201, "{}", rated.body);
    let changed = api
        .post(
            &path,
            As::Bearer(&buyer),
            json!({"stars": 4, "text": "Sorted out quickly"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let listed = api.get(&path, As::Anonymous).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["summary"], json!({"count": 1, "average": 4.0}));
    assert_eq!(listed.body["items"][0]["text"], "Sorted out quickly");
    assert_eq!(listed.body["items"][0]["mine"], false);
    assert!(!listed.body.to_string().contains("USER#"));
    let sorted = api
        .get("/v1/projects?sort=-stars&limit=1", As::Anonymous)
        .await;
    assert_eq!(sorted.status, 200, "{}", sorted.body);
    assert_eq!(sorted.body["items"][0]["id"], project, "{}", sorted.body);
    assert_eq!(sorted.body["items"][0]["buyerRatings"]["average"], 4.0);
}

/// Polls the caller's notifications until one of `kind` linking to `about` arrives.
async fn notified(api: &Api, token: &str, kind: &str, about: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = api
            .get("/v1/notifications?limit=100", As::Bearer(token))
            .await;
        assert_eq!(got.status, 200, "{}", got.body);
        let found: Vec<&Value> = got.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == kind && n["link"].as_str().unwrap_or("").contains(about))
            .collect();
        if let [one] = found.as_slice() {
            return (*one).clone();
        }
        assert!(
            found.len() < 2,
            "one notification per event: {:#}",
            got.body
        );
        assert!(
            Instant::now() < deadline,
            "no {kind} notification: {:#}",
            got.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisations_key_retires_only_with_the_retirement_scope() {
    let (running, _dir) = platform().await;
    let api = Api::new(&running);
    let (_, owner) = api.user("owner@retiring-org.example", "business").await;
    let org = api.org(&owner, "Retiring Org").await;
    let (listing, _) = offer(&api, 5).await;
    let placed = place(
        &api,
        &owner,
        "org-order",
        json!({"listingId": listing, "quantity": 2, "orgId": org}),
    )
    .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let payment_id = placed.body["payment"]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = placed.body["orderId"].as_str().unwrap().to_owned();
    simulate(&api, &payment_id, "confirm").await;
    let bought = settled(&api, &owner, &order).await;
    let holding = bought["lines"][0]["holdingId"].as_str().unwrap().to_owned();
    let key = |scopes: Value| {
        let (api, owner, org) = (&api, &owner, &org);
        async move {
            let made = api
                .post(
                    &format!("/v1/orgs/{org}/api-keys"),
                    As::Bearer(owner),
                    json!({"name": "ERP", "scopes": scopes}),
                )
                .await;
            assert_eq!(made.status, 201, "{}", made.body);
            made.body["secret"].as_str().unwrap().to_owned()
        }
    };
    let retire = |secret: String, idempotency: &'static str| {
        let (api, holding) = (&api, holding.clone());
        async move {
            api.call_with(
                "POST",
                "/v1/retirements",
                As::ApiKey(&secret),
                Some(json!({"holdingId": holding, "quantity": 1, "beneficiary": "Retiring Org"})),
                &[("Idempotency-Key", idempotency)],
            )
            .await
        }
    };
    // A key made to buy may read and buy, not retire: retirements are final.
    let buyer_key = key(json!(["orders:read", "orders:write"])).await;
    let refused = retire(buyer_key.clone(), "k-1").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused_order = api
        .call_with(
            "POST",
            "/v1/orders",
            As::ApiKey(&buyer_key),
            Some(json!({"listingId": listing, "quantity": 1, "retire": true, "beneficiary": "X"})),
            &[("Idempotency-Key", "k-order")],
        )
        .await;
    assert_eq!(refused_order.status, 403, "{}", refused_order.body);
    // A key with the retirement scope retires, even without orders:read.
    let retiring_key = key(json!(["retirements:write"])).await;
    let accepted = retire(retiring_key, "k-2").await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
}

/// The runtime dies (dropped: every request, poller and worker aborted where it stands; the
/// writes already handed to the committer still commit, as a write acknowledged or not at a
/// crash may have) while twelve paid orders are between payment, allocation, retirement and
/// notification. Restarted on the same data, the deliveries it was working on come back at
/// once, every order completes once, every retirement retires its tonne once, the serials are
/// twelve distinct ones, and each buyer notice arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_killed_mid_pipeline_finishes_every_order_once_after_a_restart() {
    use amanar_orders::orders::{OrderStatus, Orders};
    use amanar_orders::retirements::{RetirementStatus, Retirements};
    const ORDERS: usize = 12;
    let (running, dir) = seeded(Platform::new()).await;
    let api = Api::new(&running);
    let (_, buyer) = api.user("crash@orders.example", "individual").await;
    let (listing, _) = offer(&api, ORDERS as u64).await;
    let before = available(&api, &buyer, &listing).await;

    let mut orders = Vec::new();
    for n in 0..ORDERS {
        let placed = place(
            &api,
            &buyer,
            &format!("crash-{n}"),
            json!({"listingId": listing, "quantity": 1, "retire": true, "beneficiary": format!("Bakery {n}")}),
        )
        .await;
        assert_eq!(placed.status, 201, "{}", placed.body);
        orders.push((
            placed.body["orderId"].as_str().unwrap().to_owned(),
            placed.body["payment"]["paymentId"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    for (_, payment) in &orders {
        let paid = simulate(&api, payment, "confirm").await;
        assert!(paid.status < 300, "{}", paid.body);
    }
    // What the kill will leave: some of the pipeline still to run (read just before it).
    let unfinished = {
        let table = running.ports().table.clone();
        let (orders_store, retirements) = (Orders::new(table.clone()), Retirements::new(table));
        let mut unfinished = 0;
        for (order, _) in &orders {
            let order = orders_store.get(order).await.unwrap().unwrap();
            let retired = match order.lines[0].retirement_id.as_deref() {
                Some(id) if order.status == OrderStatus::Completed => retirements
                    .get(id)
                    .await
                    .unwrap()
                    .is_some_and(|r| r.status == RetirementStatus::Completed),
                _ => false,
            };
            unfinished += usize::from(!retired);
        }
        unfinished
    };
    drop(api);
    drop(running);
    assert!(
        unfinished > 0,
        "the kill came after the pipeline had finished"
    );

    let (running, _dir) = Platform::new()
        .set(vars::STRIPE_WEBHOOK_SECRET, WEBHOOK_SECRET)
        .reusing_data_dir(dir)
        .start()
        .await;
    let api = Api::new(&running);
    let buyer = api
        .post(
            "/v1/auth/login",
            As::Anonymous,
            json!({"email": "crash@orders.example", "password": amanar_journeys::PASSWORD}),
        )
        .await
        .body["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut serials = std::collections::BTreeSet::new();
    for (order, _) in &orders {
        let completed = settled(&api, &buyer, order).await;
        assert_eq!(completed["status"], "completed", "{completed:#}");
        let retirement = completed["retirementId"].as_str().unwrap().to_owned();
        let done = retired(&api, &buyer, &retirement).await;
        assert_eq!(done["quantity"], 1, "{done:#}");
        assert_eq!(done["serials"], completed["lines"][0]["serials"]);
        assert!(serials.insert(done["serials"].to_string()), "{done:#}");
        notified(&api, &buyer, "order_completed", order).await;
        notified(&api, &buyer, "retirement_completed", &retirement).await;
    }
    assert_eq!(serials.len(), ORDERS);
    assert_eq!(
        available(&api, &buyer, &listing).await,
        before - ORDERS as u64
    );
    let holdings = api.get("/v1/holdings?limit=100", As::Bearer(&buyer)).await;
    let holdings = holdings.body["items"].as_array().unwrap();
    assert_eq!(holdings.len(), ORDERS, "one holding per order");
    assert!(
        holdings.iter().all(|h| h["available"] == 0),
        "{holdings:#?}"
    );
    let notices = api
        .get("/v1/notifications?limit=100", As::Bearer(&buyer))
        .await;
    for kind in ["order_completed", "retirement_completed"] {
        let count = notices.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == kind)
            .count();
        assert_eq!(count, ORDERS, "one {kind} per order: {:#}", notices.body);
    }
    running.shutdown().await;
}

/// A buyer at the cap of orders awaiting payment gets a 409 that says so, with nothing
/// reserved; paying one makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_at_the_cap_of_unpaid_orders_is_told_and_paying_makes_room() {
    let (running, _dir) = seeded(Platform::new().set(vars::MAX_UNPAID_ORDERS, "1")).await;
    let api = Api::new(&running);
    let (_, buyer) = api.user("capped@orders.example", "individual").await;
    let (listing, _) = offer(&api, 2).await;
    let before = available(&api, &buyer, &listing).await;
    let body = json!({"listingId": listing, "quantity": 1});
    let first = place(&api, &buyer, "cap-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let refused = place(&api, &buyer, "cap-2", body.clone()).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        refused.body["type"],
        "https://docs.amanarcarbon.com/problems/too-many-unpaid-orders"
    );
    assert_eq!(available(&api, &buyer, &listing).await, before - 1);

    let payment = first.body["payment"]["paymentId"].as_str().unwrap();
    let paid = simulate(&api, payment, "confirm").await;
    assert!(paid.status < 300, "{}", paid.body);
    let order = first.body["orderId"].as_str().unwrap();
    assert_eq!(settled(&api, &buyer, order).await["status"], "completed");
    let again = place(&api, &buyer, "cap-3", body).await;
    assert_eq!(again.status, 201, "{}", again.body);
    running.shutdown().await;
}
