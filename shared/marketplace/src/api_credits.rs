//! Serial lookup (the `api-credits` function): which project, vintage, issuance and block hold a
//! serial or a range, and in what status. Public: a registry's record is for anyone to check.
//! The holder's identity is shown only to the holder.

use amanar_core::{Ports, keys};
use amanar_http::{ApiError, HttpFunction, Principal, Problem, Query};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::BlockView;
use crate::ledger::{Account, Ledger};
use crate::serial::{self, Standard, Vintage};
use amanar_http::Json;

/// The `api-credits` function.
pub const CREDITS: HttpFunction<Ports> = HttpFunction {
    name: "api-credits",
    routes: credits_router,
};

fn credits_router() -> OpenApiRouter<Ports> {
    OpenApiRouter::new().routes(routes!(lookup))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// A serial block as its registry writes it: one credit, or a range.
    pub serial: String,
    /// The standard, when the serial's form does not say (Puro and Isometric share one).
    #[param(value_type = Option<String>)]
    pub standard: Option<Standard>,
}

/// One block holding part of the serials looked up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LookedUpBlock {
    #[serde(flatten)]
    pub block: BlockView,
    /// Who holds the credits (`USER#<id>` or `ORG#<id>`), shown to that holder only.
    pub holder: Option<String>,
    /// The retirement that consumed a retired block (its public record).
    pub retirement_id: Option<String>,
}

/// What a lookup answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    #[schema(value_type = String)]
    pub standard: Standard,
    pub first: u64,
    pub last: u64,
    pub project_id: String,
    pub issuance_id: String,
    #[schema(value_type = Object)]
    pub vintage: Vintage,
    /// The whole issued block.
    pub issued_serial: String,
    pub blocks: Vec<LookedUpBlock>,
}

/// The standards a serial's text parses as, unless the caller named one.
fn parse(params: &LookupParams) -> Result<serial::SerialBlock, ApiError> {
    let text = params.serial.trim();
    if let Some(standard) = params.standard {
        return serial::parse(standard, text)
            .map_err(|e| ApiError::validation(format!("serial.{}", e.part), e.reason));
    }
    let parsed: Vec<_> = Standard::ALL
        .into_iter()
        .filter_map(|s| serial::parse(s, text).ok())
        .collect();
    match parsed.len() {
        1 => Ok(parsed.into_iter().next().expect("one")),
        0 => Err(ApiError::validation(
            "serial",
            "is not a serial block of any supported registry (name the standard to see why)",
        )),
        _ => Err(ApiError::validation(
            "standard",
            "this serial's form is shared by several standards: name one",
        )),
    }
}

fn holder(account: &Account, principal: Option<&Principal>) -> Option<String> {
    let owner = account.owner()?;
    let me = match principal? {
        Principal::User(caller) => keys::owner_user(&caller.user_id),
        Principal::Key(key) => keys::owner_org(&key.org_id),
    };
    (owner == me).then(|| owner.to_owned())
}

/// Looks up a serial or a range.
#[utoipa::path(get, path = "/v1/credits/lookup", tag = "marketplace", summary = "Look up serials",
    params(LookupParams),
    description = "Public. Answers which project, vintage, issuance and blocks hold the serials, with each block's status (`issued`, `listed`, `reserved`, `held`, `buffer`, `frozen`, `retired`, `cancelled`). The holder is shown to the holder only; a retired block names its retirement.",
    responses((status = 200, description = "The issuance and the blocks that hold the serials", body = Lookup),
        (status = 404, description = "No issuance on this platform holds all of these serials", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a serial block (the field names the part)", body = Problem, content_type = "application/problem+json")))]
pub async fn lookup(
    State(ports): State<Ports>,
    principal: Option<Principal>,
    Query(params): Query<LookupParams>,
) -> Result<Json<Lookup>, ApiError> {
    let block = parse(&params)?;
    let ledger = Ledger::new(ports.table.clone());
    let Some((issuance, _)) = ledger.locate(&block.namespace, block.range.first()).await? else {
        return Err(ApiError::NotFound);
    };
    if !issuance.range().contains(block.range.last()) {
        return Err(ApiError::NotFound);
    }
    let blocks = ledger.blocks_in(&issuance.id, block.range).await?;
    Ok(Json(Lookup {
        standard: block.standard,
        first: block.range.first(),
        last: block.range.last(),
        project_id: issuance.project_id.clone(),
        issuance_id: issuance.id.clone(),
        vintage: issuance.vintage,
        issued_serial: issuance.serial_of(issuance.range()),
        blocks: blocks
            .iter()
            .map(|b| LookedUpBlock {
                block: BlockView::of(&issuance, b),
                holder: holder(&b.account, principal.as_ref()),
                retirement_id: match &b.account {
                    Account::Retired(id) => Some(id.clone()),
                    _ => None,
                },
            })
            .collect(),
    }))
}
