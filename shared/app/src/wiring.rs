//! The composition root: builds each port and shared service on first request, from the
//! configuration, and keeps it for the life of the process. A Lambda asks only for what the states
//! of its own routes and jobs need (through [`Provide`]), so `api-health` builds its DynamoDB table
//! and the shared layers (token and API-key checks, rate limits) and nothing else; the local runtime
//! asks for everything.

use std::sync::Arc;

use amanar_accounts::profile::Profiles;
use amanar_accounts::social::SocialSettings;
use amanar_accounts::{IdentityProvider, OrgAccess};
use amanar_core::mail::Mailer;
use amanar_core::{Blobs, Clock, DepsError, Ports, Provide, Queue, SystemClock, Table};
#[cfg(feature = "local")]
use amanar_embedded::{EmbeddedStore, LocalBlobs};
use amanar_http::auth::AccountDirectory;
use amanar_http::scope::KnownScopes;
use amanar_http::{Auth, OrgGuard, RateLimits, Verifier};
#[cfg(feature = "local")]
use amanar_local_idp::{LocalIdentity, Mailbox};
use amanar_orders::{OrderSettings, Payments, SigningSecrets};
use tokio::sync::OnceCell;

use crate::config::{
    BlobBackend, Config, IdentityBackend, MailBackend, PaymentsBackend, QueueBackend, TableBackend,
};

/// Everything a process may need, each part built once, on first use. Cheap to clone.
#[derive(Clone)]
pub struct Wiring(Arc<Parts>);

#[derive(Default)]
struct Parts {
    config: Option<Config>,
    sdk: OnceCell<aws_config::SdkConfig>,
    #[cfg(feature = "local")]
    store: OnceCell<EmbeddedStore>,
    table: OnceCell<Arc<dyn Table>>,
    queue: OnceCell<Arc<dyn Queue>>,
    blobs: OnceCell<(Arc<dyn Blobs>, LocalBlobsSlot)>,
    identity: OnceCell<Arc<dyn IdentityProvider>>,
    #[cfg(feature = "local")]
    local: OnceCell<(Arc<LocalIdentity>, LocalIdentitySurface)>,
    mailer: OnceCell<Arc<dyn Mailer>>,
    auth: OnceCell<Arc<Auth>>,
    limits: OnceCell<RateLimits>,
    guard: OnceCell<Arc<dyn OrgGuard>>,
    directory: OnceCell<Arc<dyn AccountDirectory>>,
    catalogue: OnceCell<Arc<amanar_marketplace::catalogue::Catalogue>>,
    payments: OnceCell<(Arc<dyn Payments>, LocalPaymentsSlot)>,
}

/// The payment simulator beside the payments port, when payments are local.
#[cfg(feature = "local")]
type LocalPaymentsSlot = Option<amanar_orders::LocalPayments>;
#[cfg(not(feature = "local"))]
type LocalPaymentsSlot = ();

/// What the local runtime serves for its own identity provider.
#[cfg(feature = "local")]
#[derive(Clone)]
pub struct LocalIdentitySurface {
    pub jwks: jsonwebtoken::jwk::JwkSet,
    pub mailbox: Mailbox,
}

#[cfg(feature = "local")]
fn failed(what: &'static str) -> impl FnOnce(String) -> DepsError {
    move |reason| DepsError::new(what, reason)
}

/// The first local backend `config` names, when the build has no local adapters.
fn missing_adapter(config: &Config, has_local: bool) -> Option<&'static str> {
    let local = [
        (
            "the embedded table",
            matches!(config.table, TableBackend::Embedded),
        ),
        (
            "the embedded queue",
            matches!(config.queue, QueueBackend::Embedded),
        ),
        (
            "local blobs",
            matches!(config.blobs, BlobBackend::Local { .. }),
        ),
        (
            "the local mailbox",
            matches!(config.mail, MailBackend::Local),
        ),
        (
            "the local identity provider",
            matches!(config.identity, IdentityBackend::Local { .. }),
        ),
        (
            "the local payment simulator",
            matches!(config.payments, PaymentsBackend::Local),
        ),
    ];
    let chosen = local.into_iter().find(|(_, chosen)| *chosen)?;
    (!has_local).then_some(chosen.0)
}

/// The local blob adapter beside the blob port, when blobs are local (only a build with the
/// `local` feature has one).
#[cfg(feature = "local")]
type LocalBlobsSlot = Option<LocalBlobs>;
#[cfg(not(feature = "local"))]
type LocalBlobsSlot = ();

#[cfg(feature = "local")]
fn local_identity_built(parts: &Parts) -> bool {
    parts.local.initialized()
}

#[cfg(not(feature = "local"))]
fn local_identity_built(_: &Parts) -> bool {
    false
}

/// A local adapter asked of a build without them (a Lambda function is built without the `local`
/// feature, so it links no embedded store and no local identity provider).
fn not_built(what: &'static str) -> DepsError {
    DepsError::new(
        what,
        "this build has no local adapters (it was built without the `local` feature)",
    )
}

/// The AWS SDK configuration. A local runtime on AWS services uses the SDK's default chain, so
/// profile credentials work for a developer's own account; a Lambda function reads the environment
/// only ([`lambda_sdk_config`]). A build without the `local` feature runs only as a Lambda.
async fn sdk_config(face: crate::config::Face) -> aws_config::SdkConfig {
    #[cfg(feature = "local")]
    if matches!(face, crate::config::Face::Local) {
        return aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    }
    let _ = face;
    lambda_sdk_config()
}

/// The AWS SDK configuration of a Lambda function, from what Lambda puts in the environment:
/// `AWS_REGION` and the execution role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` (and an emulator's `AWS_ENDPOINT_URL` in tests). `aws_config::load_defaults`
/// would also link the profile-file, web-identity (an STS client), ECS and IMDS providers,
/// which a function never uses (measured in BENCHMARKS.md, "second slice").
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .map(aws_config::Region::new);
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(RetryConfig::standard())
        // The SDK's own default: a connection that takes longer is retried elsewhere.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_millis(3100))
                .build(),
        )
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    if let Some(url) = env("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.service_config(ServiceEnv).build()
}

/// Per-service settings from the environment, read as the SDK's default chain reads them (without
/// profile files): `AWS_ENDPOINT_URL_DYNAMODB` before `AWS_ENDPOINT_URL`, and so on per service.
#[derive(Debug)]
struct ServiceEnv;

impl aws_types::service_config::LoadServiceConfig for ServiceEnv {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        service_setting(key.env(), key.service_id(), |name| std::env::var(name).ok())
    }
}

/// `<VARIABLE>_<SERVICE ID>` (the service id upper-cased, spaces as underscores) before `<VARIABLE>`.
fn service_setting(
    variable: &str,
    service_id: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let service = service_id.to_ascii_uppercase().replace([' ', '-'], "_");
    var(&format!("{variable}_{service}")).or_else(|| var(variable))
}

/// Reads the local secret that signs blob URLs, creating it on first start.
#[cfg(feature = "local")]
fn local_secret(config: &Config) -> Result<Vec<u8>, DepsError> {
    let path = config.data_dir.join("local-secret");
    let fail = |e: std::io::Error| DepsError::new("the local signing secret", e);
    match std::fs::read(&path) {
        Ok(secret) if secret.len() >= 32 => {
            // One written by an older version may be world-readable.
            amanar_embedded::private::ensure_file(&path).map_err(fail)?;
            Ok(secret)
        }
        _ => {
            let mut secret = vec![0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
            amanar_embedded::private::create_dir(&config.data_dir).map_err(fail)?;
            amanar_embedded::private::write_file(&path, &secret).map_err(fail)?;
            Ok(secret)
        }
    }
}

impl Wiring {
    pub fn new(config: Config) -> Self {
        Wiring(Arc::new(Parts {
            config: Some(config),
            ..Parts::default()
        }))
    }

    /// Refuses, at start, a configuration that names a backend this build does not have: a Lambda
    /// is built without the `local` feature, so an embedded table or queue, local blobs or mail,
    /// or the local identity provider would otherwise fail on the first request that needs them.
    pub fn check_build(&self) -> Result<(), DepsError> {
        match missing_adapter(self.config(), cfg!(feature = "local")) {
            Some(what) => Err(not_built(what)),
            None => Ok(()),
        }
    }

    /// The parts built so far, by name: what a function's cold start has paid for.
    pub fn built(&self) -> Vec<&'static str> {
        let p = &self.0;
        [
            ("sdk", p.sdk.initialized()),
            #[cfg(feature = "local")]
            ("store", p.store.initialized()),
            ("table", p.table.initialized()),
            ("queue", p.queue.initialized()),
            ("blobs", p.blobs.initialized()),
            (
                "identity",
                p.identity.initialized() || local_identity_built(p),
            ),
            ("mailer", p.mailer.initialized()),
            ("auth", p.auth.initialized()),
            ("limits", p.limits.initialized()),
            ("org guard", p.guard.initialized()),
            ("payments", p.payments.initialized()),
        ]
        .into_iter()
        .filter_map(|(name, built)| built.then_some(name))
        .collect()
    }

    pub fn config(&self) -> &Config {
        self.0
            .config
            .as_ref()
            .expect("a wiring always has its configuration")
    }

    /// The AWS SDK configuration, built on first use: region, credentials and `AWS_ENDPOINT_URL`
    /// (emulators) come from the environment.
    async fn sdk(&self) -> &aws_config::SdkConfig {
        self.0
            .sdk
            .get_or_init(|| sdk_config(self.config().face))
            .await
    }

    /// The embedded store under the data directory (table and queues in one file).
    #[cfg(feature = "local")]
    async fn store(&self) -> Result<&EmbeddedStore, DepsError> {
        self.0
            .store
            .get_or_try_init(|| async {
                let dir = &self.config().data_dir;
                EmbeddedStore::open(dir).map_err(|e| {
                    DepsError::new("the embedded store", format!("{}: {e}", dir.display()))
                })
            })
            .await
    }

    pub async fn table(&self) -> Result<Arc<dyn Table>, DepsError> {
        self.0
            .table
            .get_or_try_init(|| async {
                Ok::<Arc<dyn Table>, DepsError>(match &self.config().table {
                    #[cfg(feature = "local")]
                    TableBackend::Embedded => {
                        Arc::new(self.store().await?.table.clone()) as Arc<dyn Table>
                    }
                    #[cfg(not(feature = "local"))]
                    TableBackend::Embedded => return Err(not_built("the embedded table")),
                    TableBackend::Dynamo { table_name } => {
                        Arc::new(amanar_dynamo::DynamoTable::new(
                            aws_sdk_dynamodb::Client::new(self.sdk().await),
                            table_name,
                        ))
                    }
                })
            })
            .await
            .cloned()
    }

    pub async fn queue(&self) -> Result<Arc<dyn Queue>, DepsError> {
        self.0
            .queue
            .get_or_try_init(|| async {
                Ok::<Arc<dyn Queue>, DepsError>(match &self.config().queue {
                    #[cfg(feature = "local")]
                    QueueBackend::Embedded => {
                        Arc::new(self.store().await?.queue.clone()) as Arc<dyn Queue>
                    }
                    #[cfg(not(feature = "local"))]
                    QueueBackend::Embedded => return Err(not_built("the embedded queue")),
                    QueueBackend::Sqs { urls } => Arc::new(amanar_sqs::SqsQueue::new(
                        aws_sdk_sqs::Client::new(self.sdk().await),
                        urls.clone(),
                    )),
                })
            })
            .await
            .cloned()
    }

    async fn blob_parts(&self) -> Result<&(Arc<dyn Blobs>, LocalBlobsSlot), DepsError> {
        self.0
            .blobs
            .get_or_try_init(|| async {
                let config = self.config();
                Ok(match &config.blobs {
                    #[cfg(feature = "local")]
                    BlobBackend::Local { public_url } => {
                        let local = LocalBlobs::new(
                            config.data_dir.join("blobs"),
                            public_url.clone(),
                            local_secret(config)?,
                        );
                        (Arc::new(local.clone()) as Arc<dyn Blobs>, Some(local))
                    }
                    #[cfg(not(feature = "local"))]
                    BlobBackend::Local { .. } => return Err(not_built("local blobs")),
                    BlobBackend::S3 {
                        buckets,
                        force_path_style,
                    } => {
                        let s3 = aws_sdk_s3::config::Builder::from(self.sdk().await)
                            .force_path_style(*force_path_style)
                            .build();
                        let blobs = amanar_s3::S3Blobs::new(
                            aws_sdk_s3::Client::from_conf(s3),
                            buckets.clone(),
                        );
                        (Arc::new(blobs) as Arc<dyn Blobs>, LocalBlobsSlot::default())
                    }
                })
            })
            .await
    }

    pub async fn blobs(&self) -> Result<Arc<dyn Blobs>, DepsError> {
        Ok(self.blob_parts().await?.0.clone())
    }

    /// The local blob adapter, when blobs are local: the runtime serves and verifies its URLs.
    #[cfg(feature = "local")]
    pub async fn local_blobs(&self) -> Result<Option<LocalBlobs>, DepsError> {
        Ok(self.blob_parts().await?.1.clone())
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }

    pub async fn ports(&self) -> Result<Ports, DepsError> {
        Ok(Ports {
            table: self.table().await?,
            queue: self.queue().await?,
            blobs: self.blobs().await?,
            clock: self.clock(),
        })
    }

    /// The local identity provider and what the local runtime serves for it.
    #[cfg(feature = "local")]
    async fn local_parts(
        &self,
        issuer: &str,
    ) -> Result<&(Arc<LocalIdentity>, LocalIdentitySurface), DepsError> {
        self.0
            .local
            .get_or_try_init(|| async {
                let (table, clock) = (self.table().await?, self.clock());
                let fail = |e: amanar_accounts::IdentityError| e.to_string();
                let secret = local_secret(self.config())?;
                let local =
                    LocalIdentity::open(table.clone(), clock.clone(), issuer.to_owned(), &secret)
                        .await
                        .map_err(fail)
                        .map_err(failed("the local identity provider"))?;
                let surface = LocalIdentitySurface {
                    jwks: local
                        .jwks()
                        .await
                        .map_err(fail)
                        .map_err(failed("the local identity provider"))?,
                    mailbox: Mailbox::new(table, clock),
                };
                Ok((Arc::new(local), surface))
            })
            .await
    }

    /// The identity provider (its Cognito client is built, and linked, only by functions that
    /// call this: the ones that manage accounts).
    pub async fn identity(&self) -> Result<Arc<dyn IdentityProvider>, DepsError> {
        self.0
            .identity
            .get_or_try_init(|| async {
                Ok::<Arc<dyn IdentityProvider>, DepsError>(match &self.config().identity {
                    #[cfg(feature = "local")]
                    IdentityBackend::Local { issuer } => {
                        self.local_parts(issuer).await?.0.clone() as Arc<dyn IdentityProvider>
                    }
                    #[cfg(not(feature = "local"))]
                    IdentityBackend::Local { .. } => {
                        return Err(not_built("the local identity provider"));
                    }
                    IdentityBackend::Cognito {
                        user_pool_id,
                        app,
                        enrolment,
                        pre_token_trigger,
                    } => {
                        let sdk = self.sdk().await;
                        Arc::new(
                            amanar_cognito::CognitoIdentity::new(
                                aws_sdk_cognitoidentityprovider::Client::new(sdk),
                                &region(sdk),
                                user_pool_id,
                                app.clone(),
                                enrolment.clone(),
                                cognito_endpoint().as_deref(),
                            )
                            .requiring_trigger(*pre_token_trigger),
                        )
                    }
                })
            })
            .await
            .cloned()
    }

    /// The local identity provider's JWKS and mailbox, when it is the provider.
    #[cfg(feature = "local")]
    pub async fn local_identity(&self) -> Result<Option<LocalIdentitySurface>, DepsError> {
        Ok(match &self.config().identity {
            IdentityBackend::Local { issuer } => Some(self.local_parts(issuer).await?.1.clone()),
            IdentityBackend::Cognito { .. } => None,
        })
    }

    pub async fn mailer(&self) -> Result<Arc<dyn Mailer>, DepsError> {
        self.0
            .mailer
            .get_or_try_init(|| async {
                Ok::<Arc<dyn Mailer>, DepsError>(match &self.config().mail {
                    #[cfg(feature = "local")]
                    MailBackend::Local => {
                        Arc::new(Mailbox::new(self.table().await?, self.clock())) as Arc<dyn Mailer>
                    }
                    #[cfg(not(feature = "local"))]
                    MailBackend::Local => return Err(not_built("the local mailbox")),
                    MailBackend::Ses { from } => Arc::new(amanar_ses::SesMailer::new(
                        aws_sdk_sesv2::Client::new(self.sdk().await),
                        from.clone(),
                    )),
                })
            })
            .await
            .cloned()
    }

    /// Bearer-token and API-key checks. Token keys load on the first token: locally from the
    /// embedded provider, in AWS from the user pool's JWKS over HTTPS (no Cognito client).
    pub async fn auth(&self) -> Result<Arc<Auth>, DepsError> {
        self.0
            .auth
            .get_or_try_init(|| async {
                let keys =
                    amanar_accounts::apikeys::ApiKeyStore::new(self.table().await?, self.clock());
                // Weak: the wiring keeps the Auth, so a strong handle here would be a cycle that
                // keeps the embedded store open after the runtime stops.
                let wiring = Arc::downgrade(&self.0);
                let auth = Auth::lazy(move || {
                    let wiring = wiring.upgrade().map(Wiring);
                    async move {
                        match wiring {
                            Some(wiring) => wiring.verifier().await,
                            None => Err("the process is stopping".to_owned()),
                        }
                    }
                })
                .with_api_keys(Arc::new(keys));
                Ok(Arc::new(auth))
            })
            .await
            .cloned()
    }

    async fn verifier(&self) -> Result<Verifier, String> {
        let (issuer, jwks) = match &self.config().identity {
            // Straight to the local provider, not through `identity()`: a function that only
            // verifies tokens must not link the Cognito client.
            #[cfg(feature = "local")]
            IdentityBackend::Local { issuer } => {
                let (local, surface) = self.local_parts(issuer).await.map_err(|e| e.to_string())?;
                (local.issuer(), surface.jwks.clone())
            }
            #[cfg(not(feature = "local"))]
            IdentityBackend::Local { .. } => {
                return Err(not_built("the local identity provider").to_string());
            }
            IdentityBackend::Cognito {
                user_pool_id, app, ..
            } => {
                let keys = amanar_cognito::TokenKeys::new(
                    &region(self.sdk().await),
                    user_pool_id,
                    &app.id,
                    cognito_endpoint().as_deref(),
                );
                (keys.issuer(), keys.jwks().await.map_err(|e| e.to_string())?)
            }
        };
        Verifier::from_jwks(issuer.issuer, issuer.client_id, &jwks).map_err(|e| e.to_string())
    }

    /// Per-user and per-key request limits. One process with its own store counts in memory;
    /// processes that share a table (Lambda, or a local runtime on DynamoDB) count in it.
    pub async fn limits(&self) -> Result<RateLimits, DepsError> {
        self.0
            .limits
            .get_or_try_init(|| async {
                let config = self.config();
                let counter: Arc<dyn amanar_http::ratelimit::WindowCounter> = match &config.table {
                    TableBackend::Embedded => {
                        Arc::new(amanar_http::ratelimit::MemoryCounter::default())
                    }
                    TableBackend::Dynamo { .. } => {
                        Arc::new(amanar_http::ratelimit::TableCounter(self.table().await?))
                    }
                };
                Ok(RateLimits {
                    counter,
                    clock: self.clock(),
                    per_user: config.rate_limit_per_user,
                    per_key: config.rate_limit_per_key,
                    per_address: config.rate_limit_auth_per_address,
                })
            })
            .await
            .cloned()
    }

    /// How other contexts ask whether a caller may touch an organisation (accounts answers). Only
    /// the access checks are built: no mailer, no API-key store.
    pub async fn org_guard(&self) -> Result<Arc<dyn OrgGuard>, DepsError> {
        self.0
            .guard
            .get_or_try_init(|| async {
                let access =
                    OrgAccess::new(self.identity().await?, self.table().await?, self.clock());
                Ok(Arc::new(access) as Arc<dyn OrgGuard>)
            })
            .await
            .cloned()
    }

    /// Account types for other contexts, from the accounts context's profiles.
    pub async fn account_directory(&self) -> Result<Arc<dyn AccountDirectory>, DepsError> {
        self.0
            .directory
            .get_or_try_init(|| async {
                let profiles =
                    Profiles::new(self.identity().await?, self.table().await?, self.clock());
                Ok(Arc::new(profiles) as Arc<dyn AccountDirectory>)
            })
            .await
            .cloned()
    }

    /// The process's catalogue index (one per process: every search shares it).
    pub async fn catalogue(
        &self,
    ) -> Result<Arc<amanar_marketplace::catalogue::Catalogue>, DepsError> {
        self.0
            .catalogue
            .get_or_try_init(|| async {
                Ok(Arc::new(amanar_marketplace::catalogue::Catalogue::new(
                    self.table().await?,
                    self.clock(),
                    self.config().catalogue_refresh,
                )))
            })
            .await
            .cloned()
    }

    /// The webhook's signing secrets: configured, or (local runtime) derived from the runtime's
    /// own secret, so the simulator and the webhook agree without configuration.
    pub async fn webhook_secrets(&self) -> Result<SigningSecrets, DepsError> {
        if let Some(secrets) = &self.config().webhook_secrets {
            return Ok(secrets.clone());
        }
        #[cfg(feature = "local")]
        if self.config().payments == PaymentsBackend::Local {
            use sha2::Digest;
            let secret = local_secret(self.config())?;
            let mut hash = sha2::Sha256::new();
            hash.update(b"stripe-webhook\0");
            hash.update(&secret);
            let derived = format!("whsec_local_{}", hex::encode(hash.finalize()));
            return Ok(SigningSecrets::parse(&derived).expect("one secret"));
        }
        Err(DepsError::new(
            "the webhook signing secrets",
            "AMANAR_STRIPE_WEBHOOK_SECRET is not set",
        ))
    }

    async fn payment_parts(&self) -> Result<&(Arc<dyn Payments>, LocalPaymentsSlot), DepsError> {
        self.0
            .payments
            .get_or_try_init(|| async {
                Ok(match &self.config().payments {
                    #[cfg(feature = "local")]
                    PaymentsBackend::Local => {
                        let local = amanar_orders::LocalPayments::new(
                            self.table().await?,
                            self.clock(),
                            &local_secret(self.config())?,
                            self.webhook_secrets().await?,
                        );
                        (Arc::new(local.clone()) as Arc<dyn Payments>, Some(local))
                    }
                    #[cfg(not(feature = "local"))]
                    PaymentsBackend::Local => return Err(not_built("the local payment simulator")),
                    PaymentsBackend::Stripe {
                        secret_key,
                        api_base,
                    } => {
                        let key = secret_key.as_deref().ok_or_else(|| {
                            DepsError::new(
                                "the Stripe payments adapter",
                                "AMANAR_STRIPE_SECRET_KEY is not set",
                            )
                        })?;
                        let stripe = amanar_stripe::StripePayments::new(key, api_base)
                            .map_err(|e| DepsError::new("the Stripe payments adapter", e))?;
                        (
                            Arc::new(stripe) as Arc<dyn Payments>,
                            LocalPaymentsSlot::default(),
                        )
                    }
                })
            })
            .await
    }

    /// The payments port (its Stripe client is built, and linked, only by the functions that
    /// take payments).
    pub async fn payments(&self) -> Result<Arc<dyn Payments>, DepsError> {
        Ok(self.payment_parts().await?.0.clone())
    }

    /// The local payment simulator, when payments are local: the runtime serves its routes.
    #[cfg(feature = "local")]
    pub async fn local_payments(&self) -> Result<Option<amanar_orders::LocalPayments>, DepsError> {
        Ok(self.payment_parts().await?.1.clone())
    }

    pub fn social(&self) -> SocialSettings {
        let config = self.config();
        SocialSettings {
            providers: config.social.clone(),
            callback_url: config.social_callback_url.clone(),
        }
    }
}

fn region(sdk: &aws_config::SdkConfig) -> String {
    sdk.region().map(|r| r.to_string()).unwrap_or_default()
}

/// An emulator's Cognito endpoint, when one is configured.
fn cognito_endpoint() -> Option<String> {
    // The same rule as the SDK clients' own endpoints (ServiceEnv), so the token keys and the
    // Cognito client reach the same place.
    service_setting("AWS_ENDPOINT_URL", "Cognito Identity Provider", |name| {
        std::env::var(name).ok()
    })
}

/// One `Provide` per dependency kind, each delegating to the builder above.
macro_rules! provide {
    ($($ty:ty => $method:ident),* $(,)?) => {
        $(impl Provide<$ty> for Wiring {
            async fn provide(&self) -> Result<$ty, DepsError> {
                self.$method().await
            }
        })*
    };
}

provide! {
    Arc<dyn Table> => table,
    Arc<dyn Queue> => queue,
    Arc<dyn Blobs> => blobs,
    Ports => ports,
    Arc<dyn IdentityProvider> => identity,
    Arc<dyn Mailer> => mailer,
    Arc<Auth> => auth,
    RateLimits => limits,
    Arc<dyn OrgGuard> => org_guard,
    Arc<dyn AccountDirectory> => account_directory,
    Arc<amanar_marketplace::catalogue::Catalogue> => catalogue,
    Arc<dyn Payments> => payments,
    SigningSecrets => webhook_secrets,
}

impl Provide<amanar_notifications::PublicUrl> for Wiring {
    async fn provide(&self) -> Result<amanar_notifications::PublicUrl, DepsError> {
        Ok(amanar_notifications::PublicUrl(
            self.config().public_url.clone(),
        ))
    }
}

impl Provide<OrderSettings> for Wiring {
    async fn provide(&self) -> Result<OrderSettings, DepsError> {
        Ok(self.config().orders.clone())
    }
}

impl Provide<Arc<dyn Clock>> for Wiring {
    async fn provide(&self) -> Result<Arc<dyn Clock>, DepsError> {
        Ok(self.clock())
    }
}

impl Provide<amanar_marketplace::issuance::BufferPolicy> for Wiring {
    async fn provide(&self) -> Result<amanar_marketplace::issuance::BufferPolicy, DepsError> {
        Ok(self.config().buffer_policy.clone())
    }
}

impl Provide<SocialSettings> for Wiring {
    async fn provide(&self) -> Result<SocialSettings, DepsError> {
        Ok(self.social())
    }
}

impl Provide<KnownScopes> for Wiring {
    async fn provide(&self) -> Result<KnownScopes, DepsError> {
        Ok(crate::known_scopes())
    }
}

#[cfg(all(test, feature = "local"))]
mod tests {
    use super::*;
    use crate::config::Face;

    /// A Lambda configuration on the embedded store: every other part would need AWS, so building
    /// one by mistake shows up in [`Wiring::built`].
    fn wiring(dir: &std::path::Path) -> Wiring {
        let dir = dir.display().to_string();
        let config = Config::from_lookup(Face::Lambda, |name| match name {
            "AMANAR_TABLE_BACKEND" => Some("embedded".into()),
            "AMANAR_DATA_DIR" => Some(dir.clone()),
            "AMANAR_QUEUE_URL_JOBS" => Some("http://127.0.0.1:9/jobs".into()),
            "AMANAR_UPLOADS_BUCKET" => Some("uploads".into()),
            "AMANAR_EXPORTS_BUCKET" => Some("exports".into()),
            "AMANAR_USER_POOL_ID" => Some("eu-west-1_x".into()),
            "AMANAR_USER_POOL_CLIENT_ID" => Some("client".into()),
            "AMANAR_MAIL_FROM" => Some("no-reply@example.com".into()),
            _ => None,
        })
        .expect("a valid configuration");
        Wiring::new(config)
    }

    #[test]
    fn a_service_setting_of_its_own_wins_over_the_shared_one() {
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER" => Some("http://idp".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://all".to_owned()),
            _ => None,
        };
        let setting = |service| service_setting("AWS_ENDPOINT_URL", service, env);
        assert_eq!(
            setting("Cognito Identity Provider").as_deref(),
            Some("http://idp")
        );
        assert_eq!(setting("DynamoDB").as_deref(), Some("http://all"));
        assert_eq!(service_setting("AWS_ENDPOINT_URL", "SQS", |_| None), None);
    }

    #[test]
    fn a_build_without_local_adapters_refuses_a_configuration_that_names_one() {
        let dir = tempfile::tempdir().unwrap();
        let wiring = wiring(dir.path());
        assert_eq!(
            missing_adapter(wiring.config(), false),
            Some("the embedded table")
        );
        assert_eq!(missing_adapter(wiring.config(), true), None);
        assert!(
            wiring.check_build().is_ok(),
            "this build has the local adapters"
        );
    }

    #[tokio::test]
    async fn the_health_function_builds_its_table_and_the_shared_layers_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let wiring = wiring(dir.path());
        let _router = crate::routes::function_router(amanar_platform::health::FUNCTION, &wiring)
            .await
            .unwrap();
        assert_eq!(wiring.built(), ["store", "table", "auth", "limits"]);
    }

    #[tokio::test]
    async fn a_function_of_static_data_builds_no_port_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let wiring = wiring(dir.path());
        let _router = amanar_accounting::api::FACTORS
            .router(&wiring)
            .await
            .unwrap();
        assert!(wiring.built().is_empty(), "built {:?}", wiring.built());
    }

    #[tokio::test]
    async fn a_context_state_builds_what_its_bounds_name() {
        let dir = tempfile::tempdir().unwrap();
        let wiring = wiring(dir.path());
        let _ = <amanar_platform::health::HealthState as amanar_core::FromDeps<Wiring>>::from_deps(
            &wiring,
        )
        .await
        .unwrap();
        assert_eq!(wiring.built(), ["store", "table"]);
    }
}
