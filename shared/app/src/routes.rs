//! The HTTP functions: which routes each Lambda serves, the whole API for the local runtime, and the
//! OpenAPI document generated from the handlers' annotations (template.yaml must declare exactly
//! these routes; a test checks it).

use std::sync::{Arc, OnceLock};

use amanar_core::Ports;

use crate::wiring::Wired;
use amanar_http::Idempotency;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Declares the two ways to authenticate that the handlers' `security` entries name.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "An organisation's API key (POST /v1/orgs/{orgId}/api-keys)",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&SecuritySchemes),
    info(title = "AmanarCarbon", description = "Carbon accounting, credit marketplace and climate-risk API. JSON in and out, camelCase fields, RFC 3339 times, money and mass as decimal strings.", license(name = "Apache-2.0")),
    components(schemas(amanar_http::Problem, amanar_http::FieldError)),
    tags(
        (name = "platform", description = "Health, documentation and operations"),
        (name = "accounts", description = "Registration, login, sessions, profiles and roles"),
        (name = "carbon accounting", description = "Emission factors, units, estimates, footprints and activity imports")
    )
)]
struct ApiDoc;

/// Every HTTP function by its binary name, with the routes it serves.
pub fn http_functions() -> Vec<(&'static str, OpenApiRouter<Ports>)> {
    vec![
        ("api-health", amanar_platform::health::router()),
        ("api-docs", docs_router()),
        (
            "api-emission-factors",
            amanar_accounting::api::factors_router(),
        ),
        ("api-estimates", amanar_accounting::api::estimates_router()),
        (
            "api-footprints",
            amanar_accounting::api_footprints::footprints_router(),
        ),
        (
            "api-activity-imports",
            amanar_accounting::api_footprints::imports_router(),
        ),
        ("api-auth", amanar_accounts::api::auth_router()),
        (
            "api-me",
            amanar_accounts::api::me_router().merge(amanar_accounts::api_orgs::me_extras_router()),
        ),
        ("api-orgs", amanar_accounts::api_orgs::orgs_router()),
        ("api-admin-users", amanar_accounts::api::admin_router()),
    ]
}

/// The routes of one HTTP function, by binary name.
fn http_function(name: &str) -> Option<OpenApiRouter<Ports>> {
    http_functions()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, router)| router)
}

fn all_routes() -> OpenApiRouter<Ports> {
    http_functions().into_iter().fold(
        OpenApiRouter::with_openapi(ApiDoc::openapi()),
        |all, (_, router)| all.merge(router),
    )
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = all_routes().split_for_parts().1;
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

/// (method, path) of every route, as the OpenAPI document lists them.
pub fn route_table() -> Vec<(String, String)> {
    amanar_http::docs::routes(openapi())
}

fn finish(router: OpenApiRouter<Ports>, wired: &Wired) -> Router {
    let ports = wired.ports.clone();
    let idempotency = Idempotency {
        table: ports.table.clone(),
        clock: ports.clock.clone(),
        body_limit: amanar_http::DEFAULT_BODY_LIMIT,
        exempt_prefixes: &["/v1/auth/"],
    };
    let (router, _) = router.split_for_parts();
    let org_guard: Arc<dyn amanar_http::OrgGuard> = wired.orgs.clone();
    let router = router
        .with_state(ports)
        .layer(axum::Extension(org_guard))
        .layer(axum::Extension(wired.accounts.clone()))
        .layer(axum::Extension(wired.orgs.clone()))
        .layer(axum::Extension(wired.social.clone()));
    amanar_http::finish(
        router,
        idempotency,
        Some(wired.auth.clone()),
        Some(wired.limits.clone()),
    )
}

/// The router of one Lambda function; `None` for an unknown name.
pub fn function_router(name: &str, wired: &Wired) -> Option<Router> {
    let router = http_function(name)?;
    Some(finish(router, wired))
}

/// Every route of the API in one router (the local runtime).
pub fn api_router(wired: &Wired) -> Router {
    finish(all_routes(), wired)
}

/// The OpenAPI 3.1 document of the API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "platform", summary = "OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<Arc<str>> = OnceLock::new();
    let json = JSON
        .get_or_init(|| {
            serde_json::to_string(openapi())
                .expect("the document serialises")
                .into()
        })
        .clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}

/// Human-readable API reference.
#[utoipa::path(get, path = "/docs", tag = "platform", summary = "API reference",
    responses((status = 200, description = "The API reference as an HTML page", content_type = "text/html")))]
async fn docs_page() -> impl IntoResponse {
    static HTML: OnceLock<Arc<str>> = OnceLock::new();
    let html = HTML
        .get_or_init(|| amanar_http::docs::render(openapi()).into())
        .clone();
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html.to_string(),
    )
}

fn docs_router() -> OpenApiRouter<Ports> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}

/// (method, path) of the routes one HTTP function serves.
pub fn function_routes(name: &str) -> Option<Vec<(String, String)>> {
    let router = http_function(name)?;
    Some(amanar_http::docs::routes(&router.split_for_parts().1))
}
