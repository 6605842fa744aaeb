//! Builds the ports once per process from the configuration: the embedded adapters, the AWS
//! adapters (one SDK configuration shared by every client), or any mix.

use std::sync::Arc;

use amanar_accounts::{Accounts, IdentityProvider, LocalIdentity, Mailbox};
use amanar_core::{Blobs, Clock, Ports, Queue, SystemClock, Table};
use amanar_embedded::{EmbeddedStore, LocalBlobs, RedbQueue};
use amanar_http::{Auth, Verifier};

use crate::config::{
    BlobBackend, Config, IdentityBackend, MailBackend, QueueBackend, TableBackend,
};

/// Everything a process needs, built once.
#[derive(Clone)]
pub struct Wired {
    pub ports: Ports,
    /// Present when blobs are local: the runtime serves and verifies their signed URLs.
    pub local_blobs: Option<LocalBlobs>,
    /// Present when queues are embedded (for operations and tests).
    pub embedded_queue: Option<RedbQueue>,
    /// Account use cases over the configured identity provider.
    pub accounts: Arc<Accounts>,
    /// Social login (Google, LinkedIn).
    pub social: Arc<amanar_accounts::social::Social>,
    /// Organisations, members and invitations.
    pub orgs: Arc<amanar_accounts::orgs::Orgs>,
    /// Bearer-token and API-key checks (token keys loaded on first use).
    pub auth: Arc<Auth>,
    /// Per-user and per-key request limits, counted in the table.
    pub limits: amanar_http::RateLimits,
    /// Present with the local identity provider: the runtime serves its JWKS and mailbox.
    pub local_identity: Option<LocalIdentitySurface>,
}

/// What the local runtime serves for its own identity provider.
#[derive(Clone)]
pub struct LocalIdentitySurface {
    pub jwks: jsonwebtoken::jwk::JwkSet,
    pub mailbox: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("cannot open the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: amanar_embedded::StoreError,
    },
    #[error("cannot prepare the local signing secret: {0}")]
    Secret(std::io::Error),
    #[error("identity provider: {0}")]
    Identity(String),
}

/// Reads the local secret that signs blob URLs, creating it on first start.
fn local_secret(config: &Config) -> Result<Vec<u8>, WiringError> {
    let path = config.data_dir.join("local-secret");
    match std::fs::read(&path) {
        Ok(secret) if secret.len() >= 32 => Ok(secret),
        _ => {
            let mut secret = vec![0u8; 32];
            getrandom::fill(&mut secret)
                .map_err(|e| WiringError::Secret(std::io::Error::other(e.to_string())))?;
            std::fs::create_dir_all(&config.data_dir).map_err(WiringError::Secret)?;
            std::fs::write(&path, &secret).map_err(WiringError::Secret)?;
            Ok(secret)
        }
    }
}

pub async fn wire(config: &Config) -> Result<Wired, WiringError> {
    let store = if config.uses_embedded_store() {
        Some(
            EmbeddedStore::open(&config.data_dir).map_err(|source| WiringError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?,
        )
    } else {
        None
    };
    let needs_aws = !matches!(config.table, TableBackend::Embedded)
        || !matches!(config.queue, QueueBackend::Embedded)
        || matches!(config.blobs, BlobBackend::S3 { .. })
        || matches!(config.identity, IdentityBackend::Cognito { .. })
        || matches!(config.mail, MailBackend::Ses { .. });
    // The SDK reads region, credentials and AWS_ENDPOINT_URL (emulators) from the environment.
    let sdk = if needs_aws {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };

    let table: Arc<dyn Table> = match &config.table {
        TableBackend::Embedded => Arc::new(store.as_ref().expect("opened above").table.clone()),
        TableBackend::Dynamo { table_name } => Arc::new(amanar_dynamo::DynamoTable::new(
            aws_sdk_dynamodb::Client::new(sdk.as_ref().expect("loaded above")),
            table_name,
        )),
    };
    let embedded_queue = store
        .as_ref()
        .map(|s| s.queue.clone())
        .filter(|_| config.queue == QueueBackend::Embedded);
    let queue: Arc<dyn Queue> = match &config.queue {
        QueueBackend::Embedded => Arc::new(embedded_queue.clone().expect("opened above")),
        QueueBackend::Sqs { urls } => Arc::new(amanar_sqs::SqsQueue::new(
            aws_sdk_sqs::Client::new(sdk.as_ref().expect("loaded above")),
            urls.clone(),
        )),
    };
    let (blobs, local_blobs): (Arc<dyn Blobs>, _) = match &config.blobs {
        BlobBackend::Local { public_url } => {
            let local = LocalBlobs::new(
                config.data_dir.join("blobs"),
                public_url.clone(),
                local_secret(config)?,
            );
            (Arc::new(local.clone()), Some(local))
        }
        BlobBackend::S3 {
            buckets,
            force_path_style,
        } => {
            let s3 = aws_sdk_s3::config::Builder::from(sdk.as_ref().expect("loaded above"))
                .force_path_style(*force_path_style)
                .build();
            (
                Arc::new(amanar_s3::S3Blobs::new(
                    aws_sdk_s3::Client::from_conf(s3),
                    buckets.clone(),
                )),
                None,
            )
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (idp, local_identity): (Arc<dyn IdentityProvider>, _) = match &config.identity {
        IdentityBackend::Local { issuer } => {
            let local = LocalIdentity::open(table.clone(), clock.clone(), issuer.clone())
                .await
                .map_err(|e| WiringError::Identity(e.to_string()))?;
            let surface = LocalIdentitySurface {
                jwks: local
                    .jwks()
                    .await
                    .map_err(|e| WiringError::Identity(e.to_string()))?,
                mailbox: Mailbox::new(table.clone(), clock.clone()),
            };
            (Arc::new(local), Some(surface))
        }
        IdentityBackend::Cognito {
            user_pool_id,
            client_id,
        } => {
            let sdk = sdk.as_ref().expect("loaded above");
            let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
            let endpoint = std::env::var("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok();
            let cognito = amanar_cognito::CognitoIdentity::new(
                aws_sdk_cognitoidentityprovider::Client::new(sdk),
                &region,
                user_pool_id,
                client_id,
                endpoint.as_deref(),
            );
            (Arc::new(cognito), None)
        }
    };
    let api_keys = Arc::new(amanar_accounts::apikeys::ApiKeyStore::new(
        table.clone(),
        clock.clone(),
    ));
    let auth = {
        let idp = idp.clone();
        Arc::new(
            Auth::lazy(move || {
                let idp = idp.clone();
                async move {
                    let issuer = idp.issuer();
                    let jwks = idp.jwks().await.map_err(|e| e.to_string())?;
                    Verifier::from_jwks(issuer.issuer, issuer.client_id, &jwks)
                        .map_err(|e| e.to_string())
                }
            })
            .with_api_keys(api_keys),
        )
    };
    // One process with its own store counts in memory; processes that share a table (Lambda, or
    // a local runtime on DynamoDB) count in it.
    let counter: Arc<dyn amanar_http::ratelimit::WindowCounter> = match &config.table {
        TableBackend::Embedded => Arc::new(amanar_http::ratelimit::MemoryCounter::default()),
        TableBackend::Dynamo { .. } => {
            Arc::new(amanar_http::ratelimit::TableCounter(table.clone()))
        }
    };
    let limits = amanar_http::RateLimits {
        counter,
        clock: clock.clone(),
        per_user: config.rate_limit_per_user,
        per_key: config.rate_limit_per_key,
    };
    let accounts = Arc::new(Accounts::new(idp, table.clone(), clock.clone()));
    let social = Arc::new(amanar_accounts::social::Social::new(
        config.social.iter().cloned().collect(),
        config.social_callback_url.clone(),
        accounts.clone(),
        table.clone(),
        clock.clone(),
    ));
    let mailer: Arc<dyn amanar_core::mail::Mailer> = match &config.mail {
        MailBackend::Local => Arc::new(Mailbox::new(table.clone(), clock.clone())),
        MailBackend::Ses { from } => Arc::new(amanar_ses::SesMailer::new(
            aws_sdk_sesv2::Client::new(sdk.as_ref().expect("loaded above")),
            from.clone(),
        )),
    };
    let orgs = Arc::new(amanar_accounts::orgs::Orgs::new(
        accounts.clone(),
        table.clone(),
        clock.clone(),
        mailer,
    ));
    Ok(Wired {
        ports: Ports {
            table,
            queue,
            blobs,
            clock,
        },
        local_blobs,
        embedded_queue,
        accounts,
        orgs,
        social,
        auth,
        limits,
        local_identity,
    })
}
