//! Social login (Google, LinkedIn) with the OAuth 2.0 authorization-code flow, PKCE (S256), `state`
//! and, for OpenID Connect, `nonce`.
//!
//! Two modes, one flow:
//! - **OpenID Connect relying party** (the local runtime): the provider is found by its issuer URL
//!   (discovery), the ID token is verified against the provider's JWKS (signature, issuer, audience,
//!   expiry, nonce), and the verified email is linked to a platform account (created on first
//!   login), which then gets a session from the local identity provider.
//! - **Cognito hosted UI** (AWS): the user pool federates Google and LinkedIn itself; the platform
//!   sends the browser to the pool's `/oauth2/authorize` with `identity_provider`, and exchanges the
//!   code at `/oauth2/token` for the pool's own tokens.

use std::collections::HashMap;
use std::sync::Arc;

use amanar_core::table::{Condition, Table, TableError, WriteOp, items};
use amanar_core::{Clock, keys};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::identity::{IdentityError, SignIn, TokenSet};
use crate::service::{Accounts, AccountsError};

/// How long a started login may take to come back.
pub const STATE_SECS: i64 = 600;
pub const PROVIDERS: [&str; 2] = ["google", "linkedin"];
/// Cookie holding the browser secret of a login in progress.
pub const COOKIE: &str = "amanar_social";

/// How one provider is reached.
#[derive(Clone)]
pub enum Mode {
    Oidc {
        issuer: String,
        client_id: String,
        client_secret: String,
    },
    HostedUi {
        /// e.g. `https://<domain>.auth.<region>.amazoncognito.com`.
        base_url: String,
        client_id: String,
        /// The app client's secret (template.yaml's client has one).
        client_secret: Option<String>,
        /// The user pool's name for the identity provider (`Google`, `LinkedIn`).
        identity_provider: String,
    },
}

/// Never prints a client secret.
impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Oidc {
                issuer, client_id, ..
            } => f
                .debug_struct("Oidc")
                .field("issuer", issuer)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            Mode::HostedUi {
                base_url,
                client_id,
                client_secret,
                identity_provider,
            } => f
                .debug_struct("HostedUi")
                .field("base_url", base_url)
                .field("client_id", client_id)
                .field(
                    "client_secret",
                    &client_secret.as_ref().map(|_| "<redacted>"),
                )
                .field("identity_provider", identity_provider)
                .finish(),
        }
    }
}

/// How a confidential client proves its secret at a token endpoint: in the form (what the social
/// providers' discovery documents offer) or by HTTP Basic (what Cognito's token endpoint asks).
#[derive(Clone, Copy)]
enum ClientAuth<'a> {
    Post(&'a str),
    Basic(&'a str),
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    provider: String,
    code_verifier: String,
    nonce: String,
    /// SHA-256 of the secret in the starting browser's cookie: the callback must come from it.
    #[serde(default)]
    browser_hash: String,
    expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: EmailVerified,
    name: Option<String>,
}

/// Providers send `email_verified` as a boolean or as the string "true".
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum EmailVerified {
    Bool(bool),
    Text(String),
    #[default]
    Missing,
}

impl EmailVerified {
    fn yes(&self) -> bool {
        match self {
            EmailVerified::Bool(b) => *b,
            EmailVerified::Text(t) => t == "true",
            EmailVerified::Missing => false,
        }
    }
}

/// Why a social login failed.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("unknown or unconfigured provider; configured: {0}")]
    UnknownProvider(String),
    #[error("the login state is unknown, used or expired; start again")]
    BadState,
    #[error("the provider refused: {0}")]
    Refused(String),
    #[error("the provider did not confirm an email address")]
    EmailNotVerified,
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("the provider is unreachable: {0}")]
    Unavailable(String),
}

impl From<TableError> for SocialError {
    fn from(e: TableError) -> Self {
        SocialError::Accounts(e.into())
    }
}

struct ProviderEntry {
    mode: Mode,
    discovery: RwLock<Option<Arc<(Discovery, JwkSet)>>>,
}

pub struct Social {
    providers: HashMap<String, ProviderEntry>,
    redirect_uri: String,
    accounts: Arc<Accounts>,
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

fn random_b64(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(buffer)
}

fn unavailable(e: impl std::fmt::Display) -> SocialError {
    SocialError::Unavailable(e.to_string())
}

/// The configured providers and the callback they send the browser back to.
#[derive(Debug, Clone, Default)]
pub struct SocialSettings {
    pub providers: Vec<(String, Mode)>,
    /// The platform's callback (`<public url>/v1/auth/social/callback`).
    pub callback_url: String,
}

impl Social {
    pub fn from_settings(
        settings: SocialSettings,
        accounts: Arc<Accounts>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(
            settings.providers.into_iter().collect(),
            settings.callback_url,
            accounts,
            table,
            clock,
        )
    }

    /// `redirect_uri` is the platform's callback (`<public url>/v1/auth/social/callback`).
    pub fn new(
        providers: HashMap<String, Mode>,
        redirect_uri: impl Into<String>,
        accounts: Arc<Accounts>,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            providers: providers
                .into_iter()
                .map(|(name, mode)| {
                    (
                        name,
                        ProviderEntry {
                            mode,
                            discovery: RwLock::new(None),
                        },
                    )
                })
                .collect(),
            redirect_uri: redirect_uri.into(),
            accounts,
            table,
            clock,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The cookie attributes for the browser secret: `Secure` when the callback is HTTPS.
    pub fn cookie(&self, value: &str, max_age_secs: i64) -> String {
        let secure = if self.redirect_uri.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{COOKIE}={value}; Path=/v1/auth/social; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
        )
    }

    fn entry(&self, provider: &str) -> Result<&ProviderEntry, SocialError> {
        self.providers.get(provider).ok_or_else(|| {
            let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            names.sort();
            SocialError::UnknownProvider(if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            })
        })
    }

    /// The provider's discovery document and keys, fetched once and again on `refresh` (a token
    /// signed with a key the cache does not know means the provider rotated its keys).
    async fn discovery(
        &self,
        entry: &ProviderEntry,
        issuer: &str,
        refresh: bool,
    ) -> Result<Arc<(Discovery, JwkSet)>, SocialError> {
        if !refresh && let Some(cached) = entry.discovery.read().await.as_ref() {
            return Ok(cached.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(SocialError::Unavailable(
                "the discovery document names another issuer".into(),
            ));
        }
        let jwks: JwkSet = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let fresh = Arc::new((discovery, jwks));
        *entry.discovery.write().await = Some(fresh.clone());
        Ok(fresh)
    }

    /// The provider's authorization URL for a new login, after storing its state, and the secret
    /// to keep in the browser (an HTTP-only cookie) that the callback must bring back, so that a
    /// callback URL replayed in another browser (login CSRF) is refused.
    pub async fn start(&self, provider: &str) -> Result<(String, String), SocialError> {
        let entry = self.entry(provider)?;
        let state = random_b64(32);
        let browser_secret = random_b64(32);
        let code_verifier = random_b64(32);
        let nonce = random_b64(16);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
        let record = State {
            provider: provider.to_owned(),
            code_verifier,
            nonce: nonce.clone(),
            browser_hash: hex::encode(Sha256::digest(browser_secret.as_bytes())),
            expires_at: self.clock.now().timestamp() + STATE_SECS,
        };
        let mut item = items::with_key(
            &keys::social_state(&hex::encode(Sha256::digest(state.as_bytes()))),
            &record,
        )?;
        item.insert(
            amanar_core::table::EXPIRES_AT.into(),
            record.expires_at.into(),
        );
        self.table
            .write(vec![WriteOp::put(item).when(Condition::NotExists)])
            .await?;

        let (endpoint, client_id, extra): (String, &str, Vec<(&str, &str)>) = match &entry.mode {
            Mode::Oidc {
                issuer, client_id, ..
            } => {
                let cached = self.discovery(entry, issuer, false).await?;
                let discovery = &cached.0;
                (
                    discovery.authorization_endpoint.clone(),
                    client_id,
                    vec![("nonce", nonce.as_str())],
                )
            }
            Mode::HostedUi {
                base_url,
                client_id,
                identity_provider,
                ..
            } => (
                format!("{}/oauth2/authorize", base_url.trim_end_matches('/')),
                client_id,
                vec![("identity_provider", identity_provider.as_str())],
            ),
        };
        let mut url = reqwest::Url::parse(&endpoint).map_err(unavailable)?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", "openid email profile")
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            for (name, value) in extra {
                query.append_pair(name, value);
            }
        }
        Ok((url.into(), browser_secret))
    }

    /// Completes a login from the provider's redirect: checks and consumes the state, exchanges
    /// the code, and returns a platform session.
    pub async fn callback(
        &self,
        code: &str,
        state: &str,
        browser_secret: Option<&str>,
    ) -> Result<SignIn, SocialError> {
        let key = keys::social_state(&hex::encode(Sha256::digest(state.as_bytes())));
        let item = self.table.get(&key).await?.ok_or(SocialError::BadState)?;
        let record: State = items::parse(item)?;
        if record.expires_at <= self.clock.now().timestamp() {
            return Err(SocialError::BadState);
        }
        let presented = hex::encode(Sha256::digest(browser_secret.unwrap_or("").as_bytes()));
        if browser_secret.is_none()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.as_bytes(),
                record.browser_hash.as_bytes(),
            ))
        {
            return Err(SocialError::BadState);
        }
        // Single use: only the request that deletes it goes on.
        match self
            .table
            .write(vec![WriteOp::delete(key).when(Condition::Exists)])
            .await
        {
            Ok(()) => {}
            Err(TableError::ConditionFailed { .. }) => return Err(SocialError::BadState),
            Err(e) => return Err(e.into()),
        }
        let entry = self.entry(&record.provider)?;
        match &entry.mode {
            Mode::Oidc {
                issuer,
                client_id,
                client_secret,
            } => {
                let mut cached = self.discovery(entry, issuer, false).await?;
                let tokens = self
                    .exchange(
                        &cached.0.token_endpoint,
                        client_id,
                        Some(ClientAuth::Post(client_secret)),
                        code,
                        &record.code_verifier,
                    )
                    .await?;
                let id_token = tokens
                    .id_token
                    .ok_or_else(|| SocialError::Refused("no ID token".into()))?;
                let mut claims =
                    match verify_id_token(&id_token, &cached.1, &cached.0.issuer, client_id) {
                        Err(SocialError::Refused(reason)) if reason.contains("unknown key") => {
                            cached = self.discovery(entry, issuer, true).await?;
                            verify_id_token(&id_token, &cached.1, &cached.0.issuer, client_id)?
                        }
                        other => other?,
                    };
                if claims.nonce.as_deref() != Some(record.nonce.as_str()) {
                    return Err(SocialError::Refused(
                        "the ID token's nonce does not match".into(),
                    ));
                }
                // Providers may keep scope claims for the userinfo endpoint (OIDC Core 5.4).
                if claims.email.is_none()
                    && let (Some(endpoint), Some(access_token)) =
                        (&cached.0.userinfo_endpoint, &tokens.access_token)
                {
                    let info: IdClaims = self
                        .http
                        .get(endpoint)
                        .bearer_auth(access_token)
                        .send()
                        .await
                        .map_err(unavailable)?
                        .error_for_status()
                        .map_err(|e| SocialError::Refused(format!("userinfo: {e}")))?
                        .json()
                        .await
                        .map_err(unavailable)?;
                    if info.sub != claims.sub {
                        return Err(SocialError::Refused(
                            "userinfo names another subject".into(),
                        ));
                    }
                    claims.email = info.email;
                    claims.email_verified = info.email_verified;
                    claims.name = claims.name.or(info.name);
                }
                let email = claims
                    .email
                    .filter(|_| claims.email_verified.yes())
                    .ok_or(SocialError::EmailNotVerified)?;
                let name = claims
                    .name
                    .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
                Ok(self
                    .accounts
                    .federated_login(&record.provider, &claims.sub, &email, &name)
                    .await?)
            }
            Mode::HostedUi {
                base_url,
                client_id,
                client_secret,
                ..
            } => {
                let endpoint = format!("{}/oauth2/token", base_url.trim_end_matches('/'));
                let tokens = self
                    .exchange(
                        &endpoint,
                        client_id,
                        client_secret.as_deref().map(ClientAuth::Basic),
                        code,
                        &record.code_verifier,
                    )
                    .await?;
                let (Some(access_token), Some(refresh_token)) =
                    (tokens.access_token, tokens.refresh_token)
                else {
                    return Err(SocialError::Refused(
                        "the token response lacks tokens".into(),
                    ));
                };
                Ok(SignIn::Tokens(self.accounts.idp.adopt_tokens(
                    TokenSet {
                        access_token,
                        refresh_token,
                        expires_in: tokens.expires_in.unwrap_or(0),
                    },
                )?))
            }
        }
    }

    async fn exchange(
        &self,
        endpoint: &str,
        client_id: &str,
        auth: Option<ClientAuth<'_>>,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse, SocialError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", client_id),
            ("code_verifier", code_verifier),
        ];
        let mut request = self.http.post(endpoint);
        match auth {
            Some(ClientAuth::Post(secret)) => form.push(("client_secret", secret)),
            Some(ClientAuth::Basic(secret)) => {
                request = request.basic_auth(client_id, Some(secret))
            }
            None => {}
        }
        let response = request.form(&form).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let error = body["error"].as_str().unwrap_or("unknown error").to_owned();
            return Err(SocialError::Refused(format!(
                "token endpoint answered {status}: {error}"
            )));
        }
        response.json().await.map_err(unavailable)
    }
}

fn verify_id_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
) -> Result<IdClaims, SocialError> {
    let refused = |m: String| SocialError::Refused(m);
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| refused(format!("ID token: {e}")))?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None => jwks.keys.first(),
    }
    .ok_or_else(|| refused("ID token signed with an unknown key".into()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refused(format!("JWKS: {e}")))?;
    use jsonwebtoken::Algorithm::{ES256, ES384, PS256, PS384, PS512, RS256, RS384, RS512};
    if ![RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384].contains(&header.alg) {
        return Err(refused(format!(
            "ID token algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 30;
    jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| refused(format!("ID token: {e}")))
}

impl From<IdentityError> for SocialError {
    fn from(e: IdentityError) -> Self {
        SocialError::Accounts(e.into())
    }
}
