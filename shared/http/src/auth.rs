//! Bearer-token authentication, the same on both faces: the token must be a JWT signed by a key of
//! the identity provider's JWKS, from its issuer, for this app's client, unexpired, and an access
//! token. The local identity provider signs ES256 tokens; Cognito signs RS256 ones. In AWS the API
//! Gateway JWT authorizer checks them too, before the function runs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::idempotency::CallerScope;
use crate::problem::ApiError;

/// Who is calling: a user authenticated by an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    /// Platform roles (`admin`, `verifier`), carried as Cognito groups on both faces.
    pub groups: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.groups.iter().any(|g| g == role)
    }
}

/// A partner integration authenticated by `X-Api-Key`: a key of one organisation, with scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyCaller {
    pub key_id: String,
    pub org_id: String,
    pub scopes: Vec<String>,
}

/// Checks API keys (the accounts context implements it over the table).
#[async_trait::async_trait]
pub trait ApiKeys: Send + Sync {
    /// The key's caller, `None` for an unknown or revoked key. A storage error is answered like
    /// any other (503 when transient, else 500).
    async fn verify(&self, secret: &str) -> Result<Option<ApiKeyCaller>, amanar_core::TableError>;
}

/// Either kind of authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    User(Caller),
    Key(ApiKeyCaller),
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(key) = parts.extensions.get::<ApiKeyCaller>() {
            return Ok(Principal::Key(key.clone()));
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(Principal::User)
    }
}

/// An optional principal, for public routes that show more to some callers (`Option<Principal>`).
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(key) = parts.extensions.get::<ApiKeyCaller>() {
            return Ok(Some(Principal::Key(key.clone())));
        }
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .map(Principal::User))
    }
}

/// What a caller wants to do in an organisation: read its data (viewers and up, or a key with
/// the read scope) or change it (members and up, or a key with the write scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgAction {
    Read,
    Write,
}

/// Decides whether a principal may act on an organisation's data. The accounts context answers
/// it from memberships and API keys; other contexts ask it without knowing how organisations work.
/// Another tenant's organisation is [`ApiError::NotFound`]; a role or key scope too low is
/// [`ApiError::Forbidden`].
#[async_trait::async_trait]
pub trait OrgGuard: Send + Sync {
    async fn authorize(
        &self,
        principal: &Principal,
        org_id: &str,
        action: OrgAction,
        key_scope: crate::scope::Scope,
    ) -> Result<(), ApiError>;
}

/// What other contexts may ask about a user's account. The accounts context answers it from its
/// profiles; others ask it without knowing how accounts are stored.
#[async_trait::async_trait]
pub trait AccountDirectory: Send + Sync {
    /// The account type chosen at registration (`individual`, `business`, `enterprise`,
    /// `project_developer`); `None` for an unknown user.
    async fn account_type(&self, user_id: &str) -> Result<Option<String>, ApiError>;
}

/// Claims every access token carries, whichever provider issued it.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    token_use: String,
    /// Cognito access tokens name the app client here (they have no `aud`).
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

/// Why a token was refused. The client only ever learns "invalid token".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("not an access token")]
    NotAccess,
    #[error("issued for another client")]
    WrongClient,
}

/// Verifies access tokens against the identity provider's published keys.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    client_id: String,
    keys: HashMap<String, (DecodingKey, Algorithm)>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// From the provider's JWKS document. Keys without a `kid` or of an unsupported type are
    /// skipped; a JWKS with no usable key is an error.
    pub fn from_jwks(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        jwks: &JwkSet,
    ) -> Result<Self, TokenError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => continue,
            };
            keys.insert(kid, (key, algorithm));
        }
        if keys.is_empty() {
            return Err(TokenError::Malformed("the JWKS has no usable key".into()));
        }
        Ok(Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            keys,
        })
    }

    /// The caller an access token proves, or why it proves nothing.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (key, algorithm) = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        if header.alg != *algorithm {
            return Err(TokenError::Invalid(
                "algorithm does not match the key".into(),
            ));
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false; // checked below: Cognito access tokens use `client_id`
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        if claims.token_use != "access" {
            return Err(TokenError::NotAccess);
        }
        let client = claims.client_id.as_deref().or(claims.aud.as_deref());
        if client != Some(self.client_id.as_str()) {
            return Err(TokenError::WrongClient);
        }
        Ok(Caller {
            user_id: claims.sub,
            groups: claims.groups,
        })
    }
}

/// Loads the verifier on first use: a cold Lambda that never sees a token never fetches the JWKS.
pub struct Auth {
    keys: Option<Arc<dyn ApiKeys>>,
    verifier: tokio::sync::OnceCell<Verifier>,
    load: Box<
        dyn Fn() -> futures_util::future::BoxFuture<'static, Result<Verifier, String>>
            + Send
            + Sync,
    >,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("verifier", &self.verifier.get())
            .finish()
    }
}

impl Auth {
    pub fn ready(verifier: Verifier) -> Self {
        Self {
            keys: None,
            verifier: tokio::sync::OnceCell::new_with(Some(verifier)),
            load: Box::new(|| Box::pin(async { Err("already loaded".to_owned()) })),
        }
    }

    pub fn lazy<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Verifier, String>> + Send + 'static,
    {
        Self {
            keys: None,
            verifier: tokio::sync::OnceCell::new(),
            load: Box::new(move || Box::pin(load())),
        }
    }

    /// Also accepts `X-Api-Key`, checked by `keys`.
    pub fn with_api_keys(mut self, keys: Arc<dyn ApiKeys>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// The verifier, loading it if needed. A failed load is retried by the next request.
    pub async fn verifier(&self) -> Result<&Verifier, String> {
        self.verifier.get_or_try_init(|| (self.load)()).await
    }
}

fn bearer(parts: &axum::http::HeaderMap) -> Option<Result<&str, ()>> {
    let value = parts.get(header::AUTHORIZATION)?;
    let text = value.to_str().map_err(|_| ());
    Some(text.and_then(|t| {
        let (scheme, token) = t.split_once(' ').ok_or(())?;
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            Ok(token.trim())
        } else {
            Err(())
        }
    }))
}

fn invalid_api_key() -> Response {
    ApiError::Refused {
        status: axum::http::StatusCode::UNAUTHORIZED,
        slug: "invalid-api-key",
        title: "Invalid API key",
        detail: "The API key is unknown or revoked.".into(),
        retry_after_secs: None,
    }
    .into_response()
}

fn invalid_token() -> Response {
    let mut response = ApiError::Unauthenticated.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// Checks a bearer token when one is sent: a valid one makes the request's [`Caller`] (and its
/// idempotency scope); an invalid one is a 401 before any handler runs. Requests without a token
/// pass on anonymous, and routes that need a caller refuse them through the extractor.
pub async fn middleware(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(value) = request.headers().get("x-api-key") {
        if request.headers().contains_key(header::AUTHORIZATION) {
            return ApiError::BadRequest(
                "send either an Authorization bearer token or an X-Api-Key, not both".into(),
            )
            .into_response();
        }
        let Some(keys) = &auth.keys else {
            return invalid_api_key();
        };
        let Ok(secret) = value.to_str() else {
            return invalid_api_key();
        };
        match keys.verify(secret.trim()).await {
            Ok(Some(key)) => {
                let scope = CallerScope(crate::scope::key_subject(&key.key_id));
                request.extensions_mut().insert(scope);
                request.extensions_mut().insert(key);
                return next.run(request).await;
            }
            Ok(None) => return invalid_api_key(),
            Err(error) => return ApiError::from(error).into_response(),
        }
    }
    match bearer(request.headers()) {
        None => {}
        Some(Err(())) => return invalid_token(),
        Some(Ok(token)) => match auth.verifier().await {
            Err(error) => {
                return ApiError::Unavailable(format!("cannot load the token keys: {error}"))
                    .into_response();
            }
            Ok(verifier) => match verifier.verify(token) {
                Ok(caller) => {
                    let scope = CallerScope(crate::scope::user_subject(&caller.user_id));
                    request.extensions_mut().insert(scope);
                    request.extensions_mut().insert(caller);
                }
                Err(error) => {
                    tracing::debug!(%error, "bearer token refused");
                    return invalid_token();
                }
            },
        },
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            let mut response = ApiError::Unauthenticated.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        })
    }
}
