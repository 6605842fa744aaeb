//! HTTP routes of orders and holdings (the `api-orders` function) and of the payment webhook
//! (the `api-stripe-webhook` function).
//!
//! Who may do what:
//! - any signed-in user buys for themselves; a member (and up) of an organisation buys for it
//!   (`orgId`), and so do its API keys with `orders:write`;
//! - a user's orders and holdings are theirs alone; an organisation's are read by its viewers and
//!   up and its keys with `orders:read`; anyone else gets 404, as if they did not exist;
//! - the webhook is public and trusts only what its signature covers.

use std::collections::HashMap;
use std::sync::Arc;

use amanar_core::messages::{JobMessage, PaymentOutcome, PaymentResult};
use amanar_core::table::{Condition, EXPIRES_AT, TableError, Update, WriteOp, items};
use amanar_core::{DepsError, FromDeps, Need, Ports, Provide, QueueName, keys, new_id};
use amanar_http::{
    ApiError, HttpFunction, Json, List, OrgAction, OrgGuard, PageParams, Principal, Problem, Query,
    Scope,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::holdings::{HoldingView, Holdings};
use crate::orders::{
    LineRequest, MAX_LINE_QUANTITY, MAX_LINES, NewOrder, Order, OrderError, OrderLine,
    OrderSettings, OrderStatus, Orders, PaymentRef, Tell,
};
use crate::payments::{NewIntent, PaymentError, Payments};
use crate::signature::{self, SigningSecrets};
use crate::{ORDERS_READ, ORDERS_WRITE, RETIREMENTS_WRITE};

/// The longest id a path or body may name.
const MAX_ID: usize = 128;
/// The longest beneficiary or reason.
const MAX_TEXT: usize = 200;
/// How long a payment event's record is kept: Stripe retries for up to three days.
const EVENT_KEEP_SECS: i64 = 30 * 24 * 3600;

/// What the order and holding handlers use.
#[derive(Clone)]
pub struct OrdersState {
    pub ports: Ports,
    pub guard: Arc<dyn OrgGuard>,
    pub payments: Arc<dyn Payments>,
    pub settings: OrderSettings,
}

impl<D> FromDeps<D> for OrdersState
where
    D: Provide<Ports>
        + Provide<Arc<dyn OrgGuard>>
        + Provide<Arc<dyn Payments>>
        + Provide<OrderSettings>
        + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            ports: deps.need::<Ports>().await?,
            guard: deps.need::<Arc<dyn OrgGuard>>().await?,
            payments: deps.need::<Arc<dyn Payments>>().await?,
            settings: deps.need::<OrderSettings>().await?,
        })
    }
}

/// What the webhook uses: the table (events handled once), the `purchases` queue and the
/// signing secrets. No payment client: the webhook never calls the provider.
#[derive(Clone)]
pub struct WebhookState {
    pub ports: Ports,
    pub secrets: SigningSecrets,
}

impl<D> FromDeps<D> for WebhookState
where
    D: Provide<Ports> + Provide<SigningSecrets> + Sync,
{
    async fn from_deps(deps: &D) -> Result<Self, DepsError> {
        Ok(Self {
            ports: deps.need::<Ports>().await?,
            secrets: deps.need::<SigningSecrets>().await?,
        })
    }
}

pub const ORDERS: HttpFunction<OrdersState> = HttpFunction {
    name: "api-orders",
    routes: orders_router,
};

pub const STRIPE_WEBHOOK: HttpFunction<WebhookState> = HttpFunction {
    name: "api-stripe-webhook",
    routes: webhook_router,
};

fn orders_router() -> OpenApiRouter<OrdersState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(order_receipt))
        .routes(routes!(list_holdings))
        .routes(routes!(get_holding))
}

fn webhook_router() -> OpenApiRouter<WebhookState> {
    OpenApiRouter::new().routes(routes!(stripe_webhook))
}

// ---------------------------------------------------------------------------------------------
// Wire types

/// One line of a new order.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineInput {
    pub listing_id: String,
    /// Whole tonnes.
    pub quantity: u64,
}

/// A new order: one listing (`listingId`, `quantity`) or several `lines`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaceOrder {
    pub listing_id: Option<String>,
    pub quantity: Option<u64>,
    /// Up to 10 lines, each of another listing, all in one currency.
    pub lines: Option<Vec<LineInput>>,
    /// Retire the credits once paid, for `beneficiary` (required then) and `reason`.
    #[serde(default)]
    pub retire: bool,
    pub beneficiary: Option<String>,
    pub reason: Option<String>,
    /// Buy for this organisation (members and up; its API keys buy for it without naming it).
    pub org_id: Option<String>,
}

/// The payment to confirm in the buyer's browser (Stripe.js `confirmPayment` takes the secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub provider: String,
    pub payment_id: String,
    /// Shown to the buyer while the order awaits payment; never stored by this platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// An order as its buyer sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub order_id: String,
    pub status: OrderStatus,
    /// `USER#<id>` or `ORG#<id>`.
    pub buyer: String,
    pub lines: Vec<OrderLine>,
    /// What the credits cost: the sum of the lines.
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub subtotal: serde_json::Value,
    /// The platform fee, apart from the credits' price.
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub fee: serde_json::Value,
    /// The fee as a percentage of the subtotal (`"5.00"`).
    pub fee_rate_percent: String,
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub total: serde_json::Value,
    pub retire: bool,
    pub beneficiary: Option<String>,
    pub reason: Option<String>,
    /// For `retire: true`, once paid: the retirement of the first line (the only one of a
    /// single-listing order; each line names its own in `lines[].retirementId`). Follow it at
    /// `GET /v1/retirements/{retirementId}`.
    pub retirement_id: Option<String>,
    pub payment: Option<PaymentView>,
    pub created_at: DateTime<Utc>,
    /// An unpaid order releases its credits at this time.
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it ended without completing.
    pub reason_closed: Option<String>,
}

impl OrderView {
    fn of(order: Order, client_secret: Option<String>) -> Self {
        let money =
            |m: &amanar_marketplace::money::Money| serde_json::to_value(m).unwrap_or_default();
        let basis = order.fee_basis_points;
        OrderView {
            subtotal: money(&order.subtotal),
            fee: money(&order.fee),
            total: money(&order.total),
            fee_rate_percent: format!("{}.{:02}", basis / 100, basis % 100),
            payment: order.payment.map(|p| PaymentView {
                provider: p.provider,
                payment_id: p.payment_id,
                client_secret,
            }),
            retirement_id: order.lines.iter().find_map(|l| l.retirement_id.clone()),
            order_id: order.order_id,
            status: order.status,
            buyer: order.buyer,
            lines: order.lines,
            retire: order.retire,
            beneficiary: order.beneficiary,
            reason: order.reason,
            created_at: order.created_at,
            expires_at: order.expires_at,
            completed_at: order.completed_at,
            reason_closed: order.reason_closed,
        }
    }
}

/// A completed order's receipt.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The order id.
    pub receipt_number: String,
    pub issued_at: DateTime<Utc>,
    pub buyer: String,
    /// Each line with its exact serials.
    pub lines: Vec<OrderLine>,
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub subtotal: serde_json::Value,
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub fee: serde_json::Value,
    pub fee_rate_percent: String,
    #[schema(value_type = amanar_marketplace::money::Money)]
    pub total: serde_json::Value,
    pub payment: Option<PaymentView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OwnerParams {
    /// An organisation's orders or holdings instead of your own.
    pub org_id: Option<String>,
    #[param(value_type = Option<u32>)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Whose orders, holdings and retirements the caller acts on: its own, or an organisation's it
/// may act for (`scope` is the API-key scope the action needs).
pub(crate) async fn owner_for(
    guard: &dyn OrgGuard,
    principal: &Principal,
    org_id: Option<&str>,
    action: OrgAction,
    scope: Scope,
) -> Result<String, ApiError> {
    let org = match (principal, org_id) {
        (Principal::User(caller), None) => return Ok(keys::owner_user(&caller.user_id)),
        (Principal::User(_), Some(org)) => org.to_owned(),
        (Principal::Key(key), None) => key.org_id.clone(),
        (Principal::Key(key), Some(org)) if org == key.org_id => org.to_owned(),
        (Principal::Key(_), Some(_)) => return Err(ApiError::NotFound),
    };
    valid_id("orgId", &org)?;
    guard.authorize(principal, &org, action, scope).await?;
    Ok(keys::owner_org(&org))
}

/// May the principal read what `owner` (`USER#<id>` or `ORG#<id>`) owns? 404 otherwise.
pub(crate) async fn may_read(
    guard: &dyn OrgGuard,
    principal: &Principal,
    owner: &str,
) -> Result<(), ApiError> {
    if let Some(user) = owner.strip_prefix("USER#") {
        return match principal {
            Principal::User(caller) if caller.user_id == user => Ok(()),
            _ => Err(ApiError::NotFound),
        };
    }
    let org = owner.strip_prefix("ORG#").ok_or(ApiError::NotFound)?;
    // A refusal of any kind is a 404 here: a stranger learns nothing.
    guard
        .authorize(principal, org, OrgAction::Read, ORDERS_READ)
        .await
        .map_err(|_| ApiError::NotFound)
}

/// May the principal retire (`retirements:write`) what `owner` owns? 404 to whoever may not read
/// it (a key with the write scope alone may act without `orders:read`), the guard's refusal to a
/// reader who may not act.
pub(crate) async fn may_retire(
    guard: &dyn OrgGuard,
    principal: &Principal,
    owner: &str,
) -> Result<(), ApiError> {
    let Some(org) = owner.strip_prefix("ORG#") else {
        return may_read(guard, principal, owner).await;
    };
    match guard
        .authorize(principal, org, OrgAction::Write, RETIREMENTS_WRITE)
        .await
    {
        Ok(()) => Ok(()),
        Err(refused) => {
            may_read(guard, principal, owner).await?;
            Err(refused)
        }
    }
}

pub(crate) fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    // Control characters, and the invisible and direction-changing ones that could make a
    // printed beneficiary read as another.
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
    };
    if trimmed.is_empty() || trimmed.chars().count() > MAX_TEXT || trimmed.chars().any(hidden) {
        return Err(ApiError::validation(
            field,
            format!("1 to {MAX_TEXT} characters, without control or invisible characters"),
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

pub(crate) fn valid_id(field: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(field, "is not an id"));
    }
    Ok(())
}

/// The lines of a request, checked: one form or the other, 1 to 20 lines, distinct listings,
/// whole tonnes.
fn lines_of(body: &PlaceOrder) -> Result<Vec<LineRequest>, ApiError> {
    let lines: Vec<(String, String, u64)> = match (&body.listing_id, body.quantity, &body.lines) {
        (Some(listing), Some(quantity), None) => {
            vec![("".into(), listing.clone(), quantity)]
        }
        (None, None, Some(lines)) => lines
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("lines[{i}]."), l.listing_id.clone(), l.quantity))
            .collect(),
        (_, _, Some(_)) => {
            return Err(ApiError::validation(
                "lines",
                "give either lines or listingId with quantity, not both",
            ));
        }
        (Some(_), None, None) => return Err(ApiError::validation("quantity", "is required")),
        (None, Some(_), None) | (None, None, None) => {
            return Err(ApiError::validation(
                "listingId",
                "is required (or give lines)",
            ));
        }
    };
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(ApiError::validation(
            "lines",
            format!("an order has 1 to {MAX_LINES} lines"),
        ));
    }
    let mut checked = Vec::with_capacity(lines.len());
    for (prefix, listing_id, quantity) in lines {
        valid_id(&format!("{prefix}listingId"), &listing_id)?;
        if quantity == 0 || quantity > MAX_LINE_QUANTITY {
            return Err(ApiError::validation(
                format!("{prefix}quantity"),
                format!("whole tonnes, 1 to {MAX_LINE_QUANTITY}"),
            ));
        }
        if checked
            .iter()
            .any(|l: &LineRequest| l.listing_id == listing_id)
        {
            return Err(ApiError::validation(
                format!("{prefix}listingId"),
                "each listing appears on one line",
            ));
        }
        checked.push(LineRequest {
            listing_id,
            quantity,
        });
    }
    Ok(checked)
}

impl OrdersState {
    fn orders(&self) -> Orders {
        Orders::new(self.ports.table.clone())
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    /// Whose orders and holdings the caller acts on: its own, or an organisation's it may act
    /// for (`scope` is the API-key scope the action needs).
    async fn owner(
        &self,
        principal: &Principal,
        org_id: Option<&str>,
        action: OrgAction,
        scope: Scope,
    ) -> Result<String, ApiError> {
        owner_for(&*self.guard, principal, org_id, action, scope).await
    }

    /// May the principal read what `owner` owns? 404 otherwise.
    async fn reads(&self, principal: &Principal, owner: &str) -> Result<(), ApiError> {
        may_read(&*self.guard, principal, owner).await
    }

    async fn readable(&self, principal: &Principal, order_id: &str) -> Result<Order, ApiError> {
        valid_id("orderId", order_id)?;
        let order = self
            .orders()
            .get(order_id)
            .await?
            .ok_or(ApiError::NotFound)?;
        self.reads(principal, &order.buyer).await?;
        Ok(order)
    }

    /// The buyer's customer at the payment provider, made on their first order and reused.
    async fn customer(&self, owner: &str) -> Result<String, ApiError> {
        let provider = self.payments.provider();
        let key = keys::payment_customer(provider, owner);
        let table = &*self.ports.table;
        if let Some(item) = table.get(&key).await?
            && let Some(id) = item.get("customerId").and_then(|v| v.as_str())
        {
            return Ok(id.to_owned());
        }
        let id = self
            .payments
            .create_customer(owner, &format!("customer:{owner}"))
            .await
            .map_err(payment_error)?;
        let put = WriteOp::put(items::with_key(&key, &json!({"customerId": id}))?)
            .when(Condition::NotExists);
        match table.write(vec![put]).await {
            Ok(()) => Ok(id),
            // Made concurrently: the stored one wins (the provider's key made it the same one).
            Err(TableError::ConditionFailed { .. }) => {
                let item = table.get(&key).await?.unwrap_or_default();
                Ok(item
                    .get("customerId")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .unwrap_or(id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The order's payment at the provider, made once (the provider's idempotency key is derived
    /// from the order), with its client secret.
    async fn payment_of(&self, order: Order) -> Result<(Order, Option<String>), ApiError> {
        if order.status != OrderStatus::PendingPayment {
            return Ok((order, None));
        }
        if let Some(payment) = &order.payment {
            let secret = self
                .payments
                .intent(&payment.payment_id)
                .await
                .map_err(payment_error)?
                .client_secret;
            return Ok((order, Some(secret)));
        }
        let customer = self.customer(&order.buyer).await?;
        let intent = self
            .payments
            .create_intent(&NewIntent {
                order_id: order.order_id.clone(),
                amount: order.total,
                customer: Some(customer),
                methods: self.settings.payment_methods.clone(),
                idempotency_key: format!("order:{}", order.order_id),
            })
            .await;
        let intent = match intent {
            Ok(intent) => intent,
            // The provider will never take this payment (an amount under its minimum or over
            // its maximum, a currency it does not take): the credits go back at once.
            Err(PaymentError::Refused(reason)) => {
                tracing::warn!(order = %order.order_id, %reason, "the payment provider refused the order's payment");
                self.orders()
                    .release(
                        &order.order_id,
                        OrderStatus::PaymentFailed,
                        "the payment provider refused the payment",
                        Tell::Nobody,
                        None,
                        self.now(),
                    )
                    .await?;
                return Err(ApiError::Refused {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    slug: "payment-refused",
                    title: "Payment refused",
                    detail: format!(
                        "The payment provider refused this order's payment ({reason}); nothing stays reserved."
                    ),
                    retry_after_secs: None,
                });
            }
            Err(e) => return Err(payment_error(e)),
        };
        let payment = PaymentRef {
            provider: self.payments.provider().to_owned(),
            payment_id: intent.id.clone(),
        };
        let order = self
            .orders()
            .attach_payment(&order, payment, self.now())
            .await?;
        Ok((order, Some(intent.client_secret)))
    }
}

fn payment_error(error: PaymentError) -> ApiError {
    match error {
        PaymentError::Unavailable(reason) => {
            tracing::warn!(%reason, "payment provider unavailable");
            ApiError::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                slug: "payment-provider-unavailable",
                title: "Payment provider unavailable",
                detail: "The payment provider could not be reached. Your credits stay reserved until the order expires: retry with the same Idempotency-Key.".into(),
                retry_after_secs: Some(5),
            }
        }
        PaymentError::Refused(reason) => {
            ApiError::unexpected(format!("the payment provider refused: {reason}"))
        }
        PaymentError::NotFound => {
            ApiError::unexpected("the order's payment is gone at the provider")
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::NotFound => ApiError::NotFound,
            OrderError::ListingNotFound(id) => ApiError::validation(
                "listingId",
                format!("listing {id} does not exist or is not for sale"),
            ),
            OrderError::ListingUnavailable { listing_id, status } => ApiError::Conflict {
                slug: "listing-unavailable",
                detail: format!("Listing {listing_id} is {status}: it sells nothing now."),
            },
            OrderError::Insufficient {
                listing_id,
                available,
                requested,
            } => ApiError::Conflict {
                slug: "insufficient-credits",
                detail: format!(
                    "Listing {listing_id} has {available} t available; {requested} t were asked for. Nothing was reserved."
                ),
            },
            OrderError::OwnListing(id) => ApiError::Conflict {
                slug: "own-listing",
                detail: format!("Listing {id} sells the buyer's own credits."),
            },
            OrderError::Currencies(a, b) => ApiError::validation(
                "lines",
                format!("an order is paid in one currency; these listings sell in {a} and {b}"),
            ),
            OrderError::TooLarge => {
                ApiError::validation("lines", "the order's total is too large")
            }
            OrderError::TooManyUnpaid(max) => ApiError::Conflict {
                slug: "too-many-unpaid-orders",
                detail: format!(
                    "The buyer has {max} orders awaiting payment, the most at once: pay one first, or wait until an unpaid one expires and gives its credits back. Nothing was reserved."
                ),
            },
            OrderError::KeyReused => ApiError::Conflict {
                slug: "idempotency-key-reused",
                detail: "This Idempotency-Key placed another order; use a new key for a new order.".into(),
            },
            OrderError::State(state) => ApiError::Conflict {
                slug: "order-state",
                detail: format!("The order is {state}."),
            },
            OrderError::Contended => ApiError::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                slug: "contended",
                title: "Busy",
                detail: "The listing is selling fast; nothing was reserved. Retry shortly with the same Idempotency-Key.".into(),
                retry_after_secs: Some(1),
            },
            OrderError::Mismatch(why) => ApiError::unexpected(why),
            OrderError::Unsettled(why) => ApiError::Unavailable(why),
            OrderError::Ledger(e) => e.into(),
            OrderError::Table(e) => e.into(),
        }
    }
}

/// The id of what a request creates: derived from the caller and its `Idempotency-Key` (and
/// `kind`, so an order and a retirement under one key differ), so a retry finds what it made;
/// random without a key. `true` when keyed.
pub(crate) fn keyed_id(
    kind: &str,
    prefix: &str,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<(String, bool), ApiError> {
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        Some(Ok(key))
            if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            let mut hash = Sha256::new();
            hash.update(kind.as_bytes());
            hash.update([0]);
            hash.update(principal.subject().as_bytes());
            hash.update([0]);
            hash.update(key.as_bytes());
            Ok((
                format!("{prefix}_{}", &hex::encode(hash.finalize())[..26]),
                true,
            ))
        }
        Some(_) => Err(ApiError::validation(
            "Idempotency-Key",
            "1 to 255 printable characters",
        )),
        None => Ok((new_id(prefix), false)),
    }
}

fn fingerprint(buyer: &str, lines: &[LineRequest], body: &PlaceOrder) -> String {
    let canonical = json!({
        "buyer": buyer,
        "lines": lines.iter().map(|l| json!([l.listing_id, l.quantity])).collect::<Vec<_>>(),
        "retire": body.retire,
        "beneficiary": body.beneficiary.as_deref().map(str::trim),
        "reason": body.reason.as_deref().map(str::trim),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Places an order.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", summary = "Place an order",
    security(("bearer" = []), ("apiKey" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key return the same order (with a fresh client secret); the same key with another request is a 409")),
    request_body = PlaceOrder,
    description = "Reserves every line's credits and the order in one write, then creates its payment. A line the listing cannot fill refuses the whole order (409 naming the listing and what it has); nothing is reserved. The price of each line is quantity x unit price rounded to the currency's minor unit; the platform fee is shown apart. Unpaid orders release their credits at `expiresAt`.",
    responses((status = 201, description = "The order, awaiting payment", body = OrderView),
        (status = 409, description = "A listing cannot fill its line, is paused, or sells your own credits; the buyer has the most orders awaiting payment at once; or the key placed another order", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request (the field is named)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The payment provider is unreachable; the credits stay reserved: retry with the same key", body = Problem, content_type = "application/problem+json")))]
pub async fn place_order(
    State(state): State<OrdersState>,
    principal: Principal,
    headers: HeaderMap,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ApiError> {
    let lines = lines_of(&body)?;
    let beneficiary = text("beneficiary", body.beneficiary.clone())?;
    let reason = text("reason", body.reason.clone())?;
    if body.retire && beneficiary.is_none() {
        return Err(ApiError::validation(
            "beneficiary",
            "is required when retiring: whose claim the retirement is",
        ));
    }
    if !body.retire && (beneficiary.is_some() || reason.is_some()) {
        return Err(ApiError::validation(
            "retire",
            "beneficiary and reason go with retire: true",
        ));
    }
    let buyer = state
        .owner(
            &principal,
            body.org_id.as_deref(),
            OrgAction::Write,
            ORDERS_WRITE,
        )
        .await?;
    // Retiring on purchase needs the retirement right too (an API key made to buy lacks it).
    if body.retire && buyer.starts_with("ORG#") {
        may_retire(&*state.guard, &principal, &buyer).await?;
    }
    let (order_id, keyed) = keyed_id("order", "ord", &principal, &headers)?;
    let new = NewOrder {
        fingerprint: fingerprint(&buyer, &lines, &body),
        order_id,
        buyer,
        placed_by: principal.subject(),
        lines,
        retire: body.retire,
        beneficiary,
        reason,
        now: state.now(),
    };
    let now = new.now;
    let order = state.orders().place(new, &state.settings).await?;
    // An order this request placed carries this request's time; a replay finds an older one.
    let replayed = order.created_at != now;
    let (order, secret) = state.payment_of(order).await?;
    let id = order.order_id.clone();
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/orders/{id}"))],
        Json(OrderView::of(order, secret)),
    )
        .into_response();
    if keyed && replayed {
        response.headers_mut().insert(
            amanar_http::idempotency::REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
    }
    Ok(amanar_http::secret::carrying_secret(response))
}

/// Lists orders, newest first.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", summary = "List orders",
    security(("bearer" = []), ("apiKey" = [])),
    params(OwnerParams),
    responses((status = 200, description = "A page of orders, newest first", body = List<OrderView>),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_orders(
    State(state): State<OrdersState>,
    principal: Principal,
    Query(params): Query<OwnerParams>,
) -> Result<Json<List<OrderView>>, ApiError> {
    let owner = state
        .owner(
            &principal,
            params.org_id.as_deref(),
            OrgAction::Read,
            ORDERS_READ,
        )
        .await?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .validate()?;
    let (orders, next) = state
        .orders()
        .of_buyer(&owner, page.limit, page.cursor)
        .await?;
    Ok(Json(List::new(
        orders.into_iter().map(|o| OrderView::of(o, None)).collect(),
        next,
    )))
}

/// Reads an order; while it awaits payment, with its payment's client secret.
#[utoipa::path(get, path = "/v1/orders/{orderId}", tag = "orders", summary = "Get an order",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orderId" = String, Path, description = "Order id")),
    responses((status = 200, description = "The order", body = OrderView),
        (status = 404, description = "No such order for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_order(
    State(state): State<OrdersState>,
    principal: Principal,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let order = state.readable(&principal, &order_id).await?;
    // The client secret confirms the payment: it goes to whoever placed the order, not to every
    // reader of an organisation's orders.
    let placer = principal.subject() == order.placed_by;
    let secret = match (&order.payment, order.status) {
        (Some(payment), OrderStatus::PendingPayment) if placer => state
            .payments
            .intent(&payment.payment_id)
            .await
            .ok()
            .map(|i| i.client_secret),
        _ => None,
    };
    Ok(amanar_http::secret::carrying_secret(Json(OrderView::of(
        order, secret,
    ))))
}

/// How a receipt is asked for: `?format=pdf`, or `Accept: application/pdf`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptParams {
    /// `json` (default) or `pdf`.
    pub format: Option<String>,
}

/// A completed order's receipt, as JSON or as a PDF.
#[utoipa::path(get, path = "/v1/orders/{orderId}/receipt", tag = "orders", summary = "Get an order's receipt",
    security(("bearer" = []), ("apiKey" = [])),
    params(("orderId" = String, Path, description = "Order id"), ReceiptParams),
    responses((status = 200, description = "The receipt: lines with their serials, price, fee, total and payment", content(
            (Receipt = "application/json"),
            (Vec<u8> = "application/pdf"))),
        (status = 404, description = "No such order for this caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not completed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown format", body = Problem, content_type = "application/problem+json")))]
pub async fn order_receipt(
    State(state): State<OrdersState>,
    principal: Principal,
    Path(order_id): Path<String>,
    Query(params): Query<ReceiptParams>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let accepts_pdf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/pdf"));
    let pdf = match params.format.as_deref() {
        None => accepts_pdf,
        Some("json") => false,
        Some("pdf") => true,
        Some(_) => return Err(ApiError::validation("format", "must be json or pdf")),
    };
    let order = state.readable(&principal, &order_id).await?;
    let Some(issued_at) = order
        .completed_at
        .filter(|_| order.status == OrderStatus::Completed)
    else {
        return Err(OrderError::State(amanar_core::workflow::Status::value(order.status)).into());
    };
    if pdf {
        let file_name = format!("receipt-{}.pdf", order.order_id);
        let bytes = tokio::task::spawn_blocking(move || {
            crate::certificate::document(&receipt_document(&order, issued_at))
        })
        .await
        .map_err(|e| ApiError::Unexpected(format!("the receipt's rendering failed: {e}")))?;
        return Ok((
            [
                (header::CONTENT_TYPE, "application/pdf".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"{file_name}\""),
                ),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
                (header::VARY, "Accept".to_owned()),
            ],
            bytes,
        )
            .into_response());
    }
    let view = OrderView::of(order, None);
    let mut response = Json(Receipt {
        receipt_number: view.order_id,
        issued_at,
        buyer: view.buyer,
        lines: view.lines,
        subtotal: view.subtotal,
        fee: view.fee,
        fee_rate_percent: view.fee_rate_percent,
        total: view.total,
        payment: view.payment,
    })
    .into_response();
    // One URL, two representations: caches keep them apart, and neither is kept.
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// What a receipt prints: the same facts as its JSON.
fn receipt_document(order: &Order, issued_at: DateTime<Utc>) -> crate::certificate::Document {
    let mut rows = vec![
        ("Receipt number", order.order_id.clone()),
        (
            "Issued",
            issued_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        ("Buyer account", order.buyer.clone()),
    ];
    for line in &order.lines {
        let mut text = format!(
            "{} t x {} = {}\n{} ({}), {} vintage {}",
            line.quantity,
            line.unit_price,
            line.price,
            line.project_name,
            line.project_id,
            line.standard,
            crate::retirements::vintage_text(&line.vintage),
        );
        for serial in &line.serials {
            text.push('\n');
            text.push_str(serial);
        }
        rows.push(("Line", text));
    }
    let basis = order.fee_basis_points;
    rows.push(("Credits", order.subtotal.to_string()));
    rows.push((
        "Platform fee",
        format!("{} ({}.{:02} %)", order.fee, basis / 100, basis % 100),
    ));
    rows.push(("Total", order.total.to_string()));
    if let Some(payment) = &order.payment {
        rows.push((
            "Payment",
            format!("{} {}", payment.provider, payment.payment_id),
        ));
    }
    if order.retire {
        rows.push((
            "Retired on behalf of",
            order.beneficiary.clone().unwrap_or_default(),
        ));
    }
    crate::certificate::Document {
        title: format!("Receipt {}", order.order_id),
        heading: "Receipt",
        rows,
        footer: crate::certificate::Footer {
            label: "Total paid",
            value: order.total.to_string(),
            notice: "The serial numbers above are the exact credits this order delivered to the buyer's holdings.",
        },
    }
}

/// Lists holdings, newest first, with the serials each still holds.
#[utoipa::path(get, path = "/v1/holdings", tag = "orders", summary = "List holdings",
    security(("bearer" = []), ("apiKey" = [])),
    params(OwnerParams),
    responses((status = 200, description = "A page of holdings: project, vintage, exact serials, quantity, acquired date and order", body = List<HoldingView>),
        (status = 422, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json")))]
pub async fn list_holdings(
    State(state): State<OrdersState>,
    principal: Principal,
    Query(params): Query<OwnerParams>,
) -> Result<Json<List<HoldingView>>, ApiError> {
    let owner = state
        .owner(
            &principal,
            params.org_id.as_deref(),
            OrgAction::Read,
            ORDERS_READ,
        )
        .await?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .validate()?;
    let holdings = Holdings::new(state.ports.table.clone());
    let (found, next) = holdings.of_owner(&owner, page.limit, page.cursor).await?;
    let mut views = Vec::with_capacity(found.len());
    for holding in found {
        views.push(holdings.view(holding).await?);
    }
    Ok(Json(List::new(views, next)))
}

/// Reads a holding.
#[utoipa::path(get, path = "/v1/holdings/{holdingId}", tag = "orders", summary = "Get a holding",
    security(("bearer" = []), ("apiKey" = [])),
    params(("holdingId" = String, Path, description = "Holding id")),
    responses((status = 200, description = "The holding", body = HoldingView),
        (status = 404, description = "No such holding for this caller", body = Problem, content_type = "application/problem+json")))]
pub async fn get_holding(
    State(state): State<OrdersState>,
    principal: Principal,
    Path(holding_id): Path<String>,
) -> Result<Json<HoldingView>, ApiError> {
    valid_id("holdingId", &holding_id)?;
    let holdings = Holdings::new(state.ports.table.clone());
    let holding = holdings.get(&holding_id).await?.ok_or(ApiError::NotFound)?;
    state.reads(&principal, &holding.owner).await?;
    Ok(Json(holdings.view(holding).await?))
}

// ---------------------------------------------------------------------------------------------
// The payment webhook

/// The parts of a Stripe event the purchase flow reads.
#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct IntentObject {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

/// What the webhook answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub received: bool,
    /// Whether the event moves an order (payment intents of this platform's orders).
    pub handled: bool,
    /// The event was received before.
    pub duplicate: bool,
}

fn bad_signature(error: signature::SignatureError) -> ApiError {
    ApiError::Refused {
        status: StatusCode::BAD_REQUEST,
        slug: "bad-signature",
        title: "Invalid webhook signature",
        detail: error.to_string(),
        retry_after_secs: None,
    }
}

/// Receives Stripe's events.
#[utoipa::path(post, path = "/v1/webhooks/stripe", tag = "orders", summary = "Stripe webhook",
    params(("Stripe-Signature" = String, Header, description = "t=<time>,v1=<HMAC-SHA256> (several v1 during a secret rotation)")),
    request_body(content = Object, description = "A Stripe event, as Stripe sends it", content_type = "application/json"),
    description = "Public; trusts only what the signature covers (300 s tolerance; any v1 may match). Each event is handled once, whatever Stripe resends; the work goes to the purchases queue and the answer comes at once. Unknown event types are acknowledged.",
    responses((status = 200, description = "Received", body = Received),
        (status = 400, description = "A missing, malformed, expired or non-matching signature, or an unreadable event", body = Problem, content_type = "application/problem+json")))]
pub async fn stripe_webhook(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let now = state.ports.clock.now();
    let header = headers.get(signature::HEADER).and_then(|v| v.to_str().ok());
    signature::verify(&body, header, &state.secrets, now.timestamp()).map_err(bad_signature)?;
    let event: StripeEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("not a Stripe event: {e}")))?;
    let outcome = match event.kind.as_str() {
        "payment_intent.succeeded" => PaymentResult::Succeeded,
        "payment_intent.payment_failed" => PaymentResult::Failed,
        "payment_intent.canceled" => PaymentResult::Canceled,
        _ => {
            return Ok(Json(Received {
                received: true,
                handled: false,
                duplicate: false,
            }));
        }
    };
    let intent: IntentObject = serde_json::from_value(event.data.object)
        .map_err(|e| ApiError::BadRequest(format!("not a payment intent: {e}")))?;
    let Some(order_id) = intent.metadata.get("orderId").cloned() else {
        // A payment of something else on the same account.
        return Ok(Json(Received {
            received: true,
            handled: false,
            duplicate: false,
        }));
    };
    let message = PaymentOutcome {
        event_id: event.id.clone(),
        provider: "stripe".into(),
        payment_id: intent.id,
        order_id,
        outcome,
        amount_minor: intent.amount,
        currency: intent.currency,
        at: DateTime::from_timestamp(event.created, 0).unwrap_or(now),
    };
    let duplicate = record_and_queue(&state, &message, &event.kind, now).await?;
    Ok(Json(Received {
        received: true,
        handled: true,
        duplicate,
    }))
}

/// Records the event once and hands it to the purchase worker. The record says whether the
/// message went out: a repeat of an event whose message is out is only acknowledged; a repeat
/// of one whose first delivery failed between the record and the send sends it (the worker is
/// idempotent, so a second message is harmless, and a lost one is not).
async fn record_and_queue(
    state: &WebhookState,
    message: &PaymentOutcome,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let table = &*state.ports.table;
    let key = keys::payment_event(&message.provider, &message.event_id);
    let record = json!({
        "eventId": message.event_id,
        "type": kind,
        "orderId": message.order_id,
        "paymentId": message.payment_id,
        "state": "received",
        "receivedAt": now,
        EXPIRES_AT: now.timestamp() + EVENT_KEEP_SECS,
    });
    let first = match table
        .write(vec![
            WriteOp::put(items::with_key(&key, &record)?).when(Condition::NotExists),
        ])
        .await
    {
        Ok(()) => true,
        Err(TableError::ConditionFailed { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    if !first {
        let queued = table
            .get(&key)
            .await?
            .and_then(|item| {
                item.get("state")
                    .and_then(|s| s.as_str())
                    .map(|s| s == "queued")
            })
            .unwrap_or(false);
        if queued {
            return Ok(true);
        }
    }
    state
        .ports
        .queue
        .send(
            QueueName::Purchases,
            &message.to_body(),
            std::time::Duration::ZERO,
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    table
        .write(vec![WriteOp::update(
            key,
            Update::new().set("state", "queued"),
        )])
        .await?;
    Ok(!first)
}
