//! The composition root: builds each port and shared service on first request, from the
//! configuration, and keeps it for the life of the process. A Lambda asks only for what the states
//! of its own routes and jobs need (through [`Provide`]), so `api-health` builds its DynamoDB table
//! and the shared layers (token and API-key checks, rate limits) and nothing else; the local runtime
//! asks for everything.

use std::sync::Arc;

use amanar_accounts::social::SocialSettings;
use amanar_accounts::{IdentityProvider, OrgAccess};
use amanar_core::mail::Mailer;
use amanar_core::{Blobs, Clock, DepsError, Ports, Provide, Queue, SystemClock, Table};
use amanar_embedded::{EmbeddedStore, LocalBlobs};
use amanar_http::scope::KnownScopes;
use amanar_http::{Auth, OrgGuard, RateLimits, Verifier};
use amanar_local_idp::{LocalIdentity, Mailbox};
use tokio::sync::OnceCell;

use crate::config::{
    BlobBackend, Config, IdentityBackend, MailBackend, QueueBackend, TableBackend,
};

/// Everything a process may need, each part built once, on first use. Cheap to clone.
#[derive(Clone)]
pub struct Wiring(Arc<Parts>);

#[derive(Default)]
struct Parts {
    config: Option<Config>,
    sdk: OnceCell<aws_config::SdkConfig>,
    store: OnceCell<EmbeddedStore>,
    table: OnceCell<Arc<dyn Table>>,
    queue: OnceCell<Arc<dyn Queue>>,
    blobs: OnceCell<(Arc<dyn Blobs>, Option<LocalBlobs>)>,
    identity: OnceCell<Arc<dyn IdentityProvider>>,
    local: OnceCell<(Arc<LocalIdentity>, LocalIdentitySurface)>,
    mailer: OnceCell<Arc<dyn Mailer>>,
    auth: OnceCell<Arc<Auth>>,
    limits: OnceCell<RateLimits>,
    guard: OnceCell<Arc<dyn OrgGuard>>,
}

/// What the local runtime serves for its own identity provider.
#[derive(Clone)]
pub struct LocalIdentitySurface {
    pub jwks: jsonwebtoken::jwk::JwkSet,
    pub mailbox: Mailbox,
}

fn failed(what: &'static str) -> impl FnOnce(String) -> DepsError {
    move |reason| DepsError::new(what, reason)
}

/// Reads the local secret that signs blob URLs, creating it on first start.
fn local_secret(config: &Config) -> Result<Vec<u8>, DepsError> {
    let path = config.data_dir.join("local-secret");
    let fail = |e: std::io::Error| DepsError::new("the local signing secret", e);
    match std::fs::read(&path) {
        Ok(secret) if secret.len() >= 32 => Ok(secret),
        _ => {
            let mut secret = vec![0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| fail(std::io::Error::other(e.to_string())))?;
            std::fs::create_dir_all(&config.data_dir).map_err(fail)?;
            std::fs::write(&path, &secret).map_err(fail)?;
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

    /// The parts built so far, by name: what a function's cold start has paid for.
    pub fn built(&self) -> Vec<&'static str> {
        let p = &self.0;
        [
            ("sdk", p.sdk.initialized()),
            ("store", p.store.initialized()),
            ("table", p.table.initialized()),
            ("queue", p.queue.initialized()),
            ("blobs", p.blobs.initialized()),
            (
                "identity",
                p.identity.initialized() || p.local.initialized(),
            ),
            ("mailer", p.mailer.initialized()),
            ("auth", p.auth.initialized()),
            ("limits", p.limits.initialized()),
            ("org guard", p.guard.initialized()),
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

    /// The AWS SDK configuration, loaded on first use: region, credentials and `AWS_ENDPOINT_URL`
    /// (emulators) come from the environment.
    async fn sdk(&self) -> &aws_config::SdkConfig {
        self.0
            .sdk
            .get_or_init(|| aws_config::load_defaults(aws_config::BehaviorVersion::latest()))
            .await
    }

    /// The embedded store under the data directory (table and queues in one file).
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
                Ok(match &self.config().table {
                    TableBackend::Embedded => {
                        Arc::new(self.store().await?.table.clone()) as Arc<dyn Table>
                    }
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
                Ok(match &self.config().queue {
                    QueueBackend::Embedded => {
                        Arc::new(self.store().await?.queue.clone()) as Arc<dyn Queue>
                    }
                    QueueBackend::Sqs { urls } => Arc::new(amanar_sqs::SqsQueue::new(
                        aws_sdk_sqs::Client::new(self.sdk().await),
                        urls.clone(),
                    )),
                })
            })
            .await
            .cloned()
    }

    async fn blob_parts(&self) -> Result<&(Arc<dyn Blobs>, Option<LocalBlobs>), DepsError> {
        self.0
            .blobs
            .get_or_try_init(|| async {
                let config = self.config();
                Ok(match &config.blobs {
                    BlobBackend::Local { public_url } => {
                        let local = LocalBlobs::new(
                            config.data_dir.join("blobs"),
                            public_url.clone(),
                            local_secret(config)?,
                        );
                        (Arc::new(local.clone()) as Arc<dyn Blobs>, Some(local))
                    }
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
                        (Arc::new(blobs) as Arc<dyn Blobs>, None)
                    }
                })
            })
            .await
    }

    pub async fn blobs(&self) -> Result<Arc<dyn Blobs>, DepsError> {
        Ok(self.blob_parts().await?.0.clone())
    }

    /// The local blob adapter, when blobs are local: the runtime serves and verifies its URLs.
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
    async fn local_parts(
        &self,
        issuer: &str,
    ) -> Result<&(Arc<LocalIdentity>, LocalIdentitySurface), DepsError> {
        self.0
            .local
            .get_or_try_init(|| async {
                let (table, clock) = (self.table().await?, self.clock());
                let fail = |e: amanar_accounts::IdentityError| e.to_string();
                let local = LocalIdentity::open(table.clone(), clock.clone(), issuer.to_owned())
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
                Ok(match &self.config().identity {
                    IdentityBackend::Local { issuer } => {
                        self.local_parts(issuer).await?.0.clone() as Arc<dyn IdentityProvider>
                    }
                    IdentityBackend::Cognito {
                        user_pool_id,
                        client_id,
                    } => {
                        let sdk = self.sdk().await;
                        Arc::new(amanar_cognito::CognitoIdentity::new(
                            aws_sdk_cognitoidentityprovider::Client::new(sdk),
                            &region(sdk),
                            user_pool_id,
                            client_id,
                            cognito_endpoint().as_deref(),
                        ))
                    }
                })
            })
            .await
            .cloned()
    }

    /// The local identity provider's JWKS and mailbox, when it is the provider.
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
                Ok(match &self.config().mail {
                    MailBackend::Local => {
                        Arc::new(Mailbox::new(self.table().await?, self.clock())) as Arc<dyn Mailer>
                    }
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
            IdentityBackend::Local { issuer } => {
                let (local, surface) = self.local_parts(issuer).await.map_err(|e| e.to_string())?;
                (local.issuer(), surface.jwks.clone())
            }
            IdentityBackend::Cognito {
                user_pool_id,
                client_id,
            } => {
                let keys = amanar_cognito::TokenKeys::new(
                    &region(self.sdk().await),
                    user_pool_id,
                    client_id,
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
    std::env::var("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
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
}

impl Provide<Arc<dyn Clock>> for Wiring {
    async fn provide(&self) -> Result<Arc<dyn Clock>, DepsError> {
        Ok(self.clock())
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

#[cfg(test)]
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
