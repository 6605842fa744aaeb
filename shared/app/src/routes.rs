//! The HTTP functions: which routes each Lambda serves, the whole API for the local runtime, and the
//! OpenAPI document generated from the handlers' annotations (template.yaml must declare exactly
//! these routes; a test checks it).

use std::sync::{Arc, OnceLock};

use amanar_core::{DepsError, FromDeps};
use amanar_http::{HttpFunction, HttpService, Idempotency, Prepared};

use crate::wiring::Wiring;
use axum::Router;
use axum::response::Response;
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
    components(schemas(amanar_http::Problem, amanar_http::FieldError))
)]
struct ApiDoc;

/// `api-docs`: the OpenAPI document and the reference page rendered from it. It belongs to the
/// composition, not to a context, because the document lists every context's routes.
pub const DOCS: HttpFunction<()> = HttpFunction {
    name: "api-docs",
    routes: docs_router,
};

/// Every HTTP function of every context, and `api-docs`.
pub fn http_functions() -> Vec<Arc<dyn HttpService<Wiring>>> {
    let mut functions: Vec<Arc<dyn HttpService<Wiring>>> = vec![DOCS.erase()];
    for context in crate::contexts() {
        functions.extend(context.http);
    }
    functions
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        let contexts = crate::contexts();
        doc.tags = Some(
            contexts
                .iter()
                .map(|c| {
                    utoipa::openapi::tag::TagBuilder::new()
                        .name(c.tag.name)
                        .description(Some(c.tag.description))
                        .build()
                })
                .collect(),
        );
        for function in http_functions() {
            doc.merge(function.openapi());
        }
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    })
}

/// (method, path) of every route, as the OpenAPI document lists them.
pub fn route_table() -> Vec<(String, String)> {
    amanar_http::docs::routes(openapi())
}

/// (method, path) of the routes one HTTP function serves.
pub fn function_routes(function: &dyn HttpService<Wiring>) -> Vec<(String, String)> {
    amanar_http::docs::routes(&function.openapi())
}

/// Adds what every function shares: bearer tokens and API keys, rate limits, idempotency keys,
/// problem+json fallbacks, request ids.
async fn finish(router: Router, wiring: &Wiring) -> Result<Router, DepsError> {
    let idempotency = Idempotency {
        table: wiring.table().await?,
        clock: wiring.clock(),
        body_limit: amanar_http::DEFAULT_BODY_LIMIT,
        // Sign-in bodies carry passwords and their answers tokens; the MFA routes' bodies carry
        // passwords and their answers TOTP secrets. The layer stores a hash of each body it
        // keys, and a fast hash of a password is a password: nothing of these is stored.
        // Orders key their own requests (the order id is derived from the key, and a replay
        // answers with a fresh payment client secret, which no stored response may hold).
        // Retirements key theirs the same way (the id is derived from the key and the record is
        // the idempotency record), so a replay shows the retirement as it stands now.
        exempt_prefixes: &["/v1/auth/", "/v1/me/mfa", "/v1/orders", "/v1/retirements"],
    };
    Ok(amanar_http::finish(
        router,
        idempotency,
        Some(wiring.auth().await?),
        Some(wiring.limits().await?),
    ))
}

/// The router of one Lambda function, with only its own state built.
pub async fn function_router<S>(
    function: HttpFunction<S>,
    wiring: &Wiring,
) -> Result<Router, DepsError>
where
    S: FromDeps<Wiring> + Clone,
{
    let router = function.router(wiring).await?;
    finish(router, wiring).await
}

/// Every route of the API in one router (the local runtime).
pub async fn api_router(wiring: &Wiring) -> Result<Router, DepsError> {
    let mut all = Router::new();
    for function in http_functions() {
        all = all.merge(function.router(wiring).await?);
    }
    finish(all, wiring).await
}

/// The OpenAPI 3.1 document of the API.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "platform", summary = "OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json() -> Response {
    static JSON: Prepared = Prepared::new();
    JSON.json(openapi)
}

/// Human-readable API reference.
#[utoipa::path(get, path = "/docs", tag = "platform", summary = "API reference",
    responses((status = 200, description = "The API reference as an HTML page", content_type = "text/html")))]
async fn docs_page() -> Response {
    static HTML: Prepared = Prepared::new();
    HTML.text("text/html; charset=utf-8", || {
        amanar_http::docs::render(openapi())
    })
}

fn docs_router() -> OpenApiRouter<()> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}
