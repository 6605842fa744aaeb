//! Typed configuration, read once at start from the environment. A missing or malformed variable
//! fails start-up with its name. Each port picks its adapter independently, so the local runtime can
//! run against AWS emulators and a Lambda against nothing but AWS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use amanar_core::{Bucket, QueueName};

/// Which face the process is: the defaults differ (embedded adapters locally, AWS in Lambda).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Local,
    Lambda,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableBackend {
    Embedded,
    Dynamo { table_name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    Embedded,
    Sqs { urls: HashMap<QueueName, String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobBackend {
    /// Files under the data directory, with URLs signed for and served by the local runtime.
    Local { public_url: String },
    S3 {
        buckets: HashMap<Bucket, String>,
        force_path_style: bool,
    },
}

/// Where outgoing mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailBackend {
    /// The local mailbox (`GET /_local/mailbox`).
    Local,
    /// SES, from a verified sender address.
    Ses { from: String },
}

/// Who keeps credentials and issues tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityBackend {
    /// The embedded provider; tokens name the runtime's public URL as issuer.
    Local { issuer: String },
    Cognito {
        user_pool_id: String,
        /// The app client that issues users' tokens, with its secret.
        app: amanar_cognito::AppClient,
        /// The client whose tokens may make Cognito's MFA calls (see
        /// `amanar_cognito::pre_token`); without one, the app client serves.
        enrolment: Option<amanar_cognito::AppClient>,
        /// The pool runs template.yaml's pre-token trigger, so a token with Cognito's
        /// user-facing scope means it is gone: refuse such tokens.
        pre_token_trigger: bool,
    },
}

/// Where payments go.
#[derive(Clone, PartialEq)]
pub enum PaymentsBackend {
    /// The local payment simulator (`POST /_local/payments/{paymentId}/confirm`).
    Local,
    /// Stripe, or a server speaking its API at `api_base` (localstripe in tests).
    Stripe {
        secret_key: Option<String>,
        api_base: String,
    },
}

impl std::fmt::Debug for PaymentsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaymentsBackend::Local => f.write_str("Local"),
            // The key never prints.
            PaymentsBackend::Stripe { api_base, .. } => {
                write!(f, "Stripe {{ api_base: {api_base:?} }}")
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub face: Face,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    /// The local runtime may listen beyond loopback (`AMANAR_EXPOSE`, `--expose`).
    pub expose: bool,
    pub table: TableBackend,
    pub queue: QueueBackend,
    pub blobs: BlobBackend,
    pub identity: IdentityBackend,
    pub mail: MailBackend,
    /// Social login providers by name (`google`, `linkedin`), and the callback URL they return to.
    pub social: Vec<(String, amanar_accounts::social::Mode)>,
    pub social_callback_url: String,
    /// Requests per minute per user and per API key, and on `/v1/auth/*` per client address.
    pub rate_limit_per_user: u32,
    pub rate_limit_per_key: u32,
    pub rate_limit_auth_per_address: u32,
    /// The first admin the local runtime makes at start (email, password).
    pub first_admin: Option<(String, String)>,
    /// How often the housekeeping job runs in the local runtime (EventBridge decides in AWS).
    pub housekeeping_every: Duration,
    /// First retry delay of a failed message (doubles per attempt).
    pub retry_base: Duration,
    /// Log as JSON lines (always in Lambda) or compact text.
    pub json_logs: bool,
    /// The buffer-pool share withheld at issuance per standard (`AMANAR_BUFFER_SHARES`,
    /// `VCS=20,ACR=18`; 20% by default), for non-permanent categories.
    pub buffer_policy: amanar_marketplace::issuance::BufferPolicy,
    /// How often a catalogue search refreshes its index from the feed
    /// (`AMANAR_CATALOGUE_REFRESH_MS`): before every search on the embedded table, every second
    /// on DynamoDB by default.
    pub catalogue_refresh: Duration,
    pub payments: PaymentsBackend,
    /// Stripe's webhook signing secrets (`AMANAR_STRIPE_WEBHOOK_SECRET`, comma-separated during a
    /// rotation). The webhook function needs them; the local runtime derives them from its own
    /// secret when unset.
    pub webhook_secrets: Option<amanar_orders::SigningSecrets>,
    /// Order lifetime, platform fee and payment methods.
    pub orders: amanar_orders::OrderSettings,
    /// Where the product is reached (`AMANAR_PUBLIC_URL`): the base of the links in emails. The
    /// local runtime's own address when unset; in AWS, emails name bare API paths until it is set.
    pub public_url: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn error(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// Environment variable names, in one place (the README lists them).
pub mod vars {
    pub const DATA_DIR: &str = "AMANAR_DATA_DIR";
    pub const ADDR: &str = "AMANAR_ADDR";
    /// `true` lets the local runtime listen on a non-loopback address (its mailbox then needs the
    /// token it prints at start).
    pub const EXPOSE: &str = "AMANAR_EXPOSE";
    pub const PUBLIC_URL: &str = "AMANAR_PUBLIC_URL";
    pub const TABLE_BACKEND: &str = "AMANAR_TABLE_BACKEND";
    pub const TABLE_NAME: &str = "AMANAR_TABLE_NAME";
    pub const QUEUE_BACKEND: &str = "AMANAR_QUEUE_BACKEND";
    pub const QUEUE_URL_JOBS: &str = "AMANAR_QUEUE_URL_JOBS";
    pub const QUEUE_URL_JOBS_DLQ: &str = "AMANAR_QUEUE_URL_JOBS_DLQ";
    pub const QUEUE_URL_UPLOADS: &str = "AMANAR_QUEUE_URL_UPLOADS";
    pub const QUEUE_URL_UPLOADS_DLQ: &str = "AMANAR_QUEUE_URL_UPLOADS_DLQ";
    pub const QUEUE_URL_PURCHASES: &str = "AMANAR_QUEUE_URL_PURCHASES";
    pub const QUEUE_URL_PURCHASES_DLQ: &str = "AMANAR_QUEUE_URL_PURCHASES_DLQ";
    pub const QUEUE_URL_RETIREMENTS: &str = "AMANAR_QUEUE_URL_RETIREMENTS";
    pub const QUEUE_URL_RETIREMENTS_DLQ: &str = "AMANAR_QUEUE_URL_RETIREMENTS_DLQ";
    pub const QUEUE_URL_NOTIFICATIONS: &str = "AMANAR_QUEUE_URL_NOTIFICATIONS";
    pub const QUEUE_URL_NOTIFICATIONS_DLQ: &str = "AMANAR_QUEUE_URL_NOTIFICATIONS_DLQ";
    pub const BLOB_BACKEND: &str = "AMANAR_BLOB_BACKEND";
    pub const UPLOADS_BUCKET: &str = "AMANAR_UPLOADS_BUCKET";
    pub const EXPORTS_BUCKET: &str = "AMANAR_EXPORTS_BUCKET";
    pub const S3_FORCE_PATH_STYLE: &str = "AMANAR_S3_FORCE_PATH_STYLE";
    pub const HOUSEKEEPING_SECS: &str = "AMANAR_HOUSEKEEPING_SECS";
    pub const RETRY_BASE_MS: &str = "AMANAR_RETRY_BASE_MS";
    pub const LOG_FORMAT: &str = "AMANAR_LOG_FORMAT";
    pub const IDENTITY_BACKEND: &str = "AMANAR_IDENTITY_BACKEND";
    pub const MAIL_BACKEND: &str = "AMANAR_MAIL_BACKEND";
    pub const MAIL_FROM: &str = "AMANAR_MAIL_FROM";
    pub const USER_POOL_ID: &str = "AMANAR_USER_POOL_ID";
    pub const USER_POOL_CLIENT_ID: &str = "AMANAR_USER_POOL_CLIENT_ID";
    /// The app client's secret (a secret: only the functions that call Cognito with the client
    /// get it).
    pub const USER_POOL_CLIENT_SECRET: &str = "AMANAR_USER_POOL_CLIENT_SECRET";
    /// The enrolment client (see `amanar_cognito::pre_token`) and its secret: both or neither.
    pub const ENROLMENT_CLIENT_ID: &str = "AMANAR_ENROLMENT_CLIENT_ID";
    pub const ENROLMENT_CLIENT_SECRET: &str = "AMANAR_ENROLMENT_CLIENT_SECRET";
    /// `true`: the pool runs the pre-token trigger (template.yaml's does).
    pub const USER_POOL_PRE_TOKEN_TRIGGER: &str = "AMANAR_USER_POOL_PRE_TOKEN_TRIGGER";
    pub const ADMIN_EMAIL: &str = "AMANAR_ADMIN_EMAIL";
    pub const ADMIN_PASSWORD: &str = "AMANAR_ADMIN_PASSWORD";
    pub const RATE_LIMIT_USER: &str = "AMANAR_RATE_LIMIT_PER_USER";
    /// Anonymous `/v1/auth/*` requests per minute from one client address.
    pub const RATE_LIMIT_AUTH_ADDRESS: &str = "AMANAR_RATE_LIMIT_AUTH_PER_ADDRESS";
    /// `https://<domain>.auth.<region>.amazoncognito.com`: social login through the hosted UI.
    pub const COGNITO_DOMAIN_URL: &str = "AMANAR_COGNITO_DOMAIN_URL";
    /// Comma-separated providers the user pool federates (`google,linkedin`).
    pub const SOCIAL_PROVIDERS: &str = "AMANAR_SOCIAL_PROVIDERS";
    pub const SOCIAL_CALLBACK_URL: &str = "AMANAR_SOCIAL_CALLBACK_URL";
    /// Local runtime: `AMANAR_SOCIAL_<GOOGLE|LINKEDIN>_{ISSUER,CLIENT_ID,CLIENT_SECRET}`.
    pub fn social(provider: &str, part: &str) -> String {
        format!("AMANAR_SOCIAL_{}_{part}", provider.to_uppercase())
    }
    pub const RATE_LIMIT_KEY: &str = "AMANAR_RATE_LIMIT_PER_KEY";
    pub const BUFFER_SHARES: &str = "AMANAR_BUFFER_SHARES";
    pub const CATALOGUE_REFRESH_MS: &str = "AMANAR_CATALOGUE_REFRESH_MS";
    pub const PAYMENTS_BACKEND: &str = "AMANAR_PAYMENTS_BACKEND";
    /// A secret.
    pub const STRIPE_SECRET_KEY: &str = "AMANAR_STRIPE_SECRET_KEY";
    /// A secret.
    pub const STRIPE_WEBHOOK_SECRET: &str = "AMANAR_STRIPE_WEBHOOK_SECRET";
    pub const STRIPE_API_BASE: &str = "AMANAR_STRIPE_API_BASE";
    /// How long an unpaid order holds its credits, in seconds (1800).
    pub const ORDER_TTL_SECS: &str = "AMANAR_ORDER_TTL_SECS";
    pub const MAX_UNPAID_ORDERS: &str = "AMANAR_MAX_UNPAID_ORDERS";
    /// The platform fee in basis points of the credits' price (500 = 5 %).
    pub const PLATFORM_FEE_BPS: &str = "AMANAR_PLATFORM_FEE_BPS";
    /// Payment method types offered, comma-separated (`card`).
    pub const PAYMENT_METHODS: &str = "AMANAR_PAYMENT_METHODS";
}

fn queue_url_var(queue: QueueName) -> &'static str {
    match queue {
        QueueName::Jobs => vars::QUEUE_URL_JOBS,
        QueueName::JobsDlq => vars::QUEUE_URL_JOBS_DLQ,
        QueueName::Uploads => vars::QUEUE_URL_UPLOADS,
        QueueName::UploadsDlq => vars::QUEUE_URL_UPLOADS_DLQ,
        QueueName::Purchases => vars::QUEUE_URL_PURCHASES,
        QueueName::PurchasesDlq => vars::QUEUE_URL_PURCHASES_DLQ,
        QueueName::Retirements => vars::QUEUE_URL_RETIREMENTS,
        QueueName::RetirementsDlq => vars::QUEUE_URL_RETIREMENTS_DLQ,
        QueueName::Notifications => vars::QUEUE_URL_NOTIFICATIONS,
        QueueName::NotificationsDlq => vars::QUEUE_URL_NOTIFICATIONS_DLQ,
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(face: Face) -> Result<Self, ConfigError> {
        Self::from_lookup(face, |name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (tests pass a map).
    pub fn from_lookup(
        face: Face,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or_else(|| error(name, "is required"));
        let choice = |name: &'static str,
                      local: &'static str,
                      aws: &'static str|
         -> Result<bool, ConfigError> {
            match get(name).as_deref() {
                None => Ok(face == Face::Lambda),
                Some(v) if v == local => Ok(false),
                Some(v) if v == aws => Ok(true),
                Some(v) => Err(error(name, format!("must be {local} or {aws}, not {v:?}"))),
            }
        };
        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            match get(name).as_deref() {
                None | Some("false" | "0") => Ok(false),
                Some("true" | "1") => Ok(true),
                Some(v) => Err(error(name, format!("must be true or false, not {v:?}"))),
            }
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| error(name, format!("must be a whole number, not {v:?}")))
                })
                .unwrap_or(Ok(default))
        };

        let data_dir = PathBuf::from(get(vars::DATA_DIR).unwrap_or_else(|| ".amanar".into()));
        let addr_text = get(vars::ADDR).unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr: SocketAddr = addr_text
            .parse()
            .map_err(|_| error(vars::ADDR, format!("must be host:port, not {addr_text:?}")))?;

        let table = if choice(vars::TABLE_BACKEND, "embedded", "dynamodb")? {
            TableBackend::Dynamo {
                table_name: required(vars::TABLE_NAME)?,
            }
        } else {
            TableBackend::Embedded
        };
        let queue = if choice(vars::QUEUE_BACKEND, "embedded", "sqs")? {
            let mut urls = HashMap::new();
            for queue in QueueName::ALL {
                if let Some(url) = get(queue_url_var(queue)) {
                    urls.insert(queue, url);
                }
            }
            if !urls.contains_key(&QueueName::Jobs) {
                return Err(error(
                    vars::QUEUE_URL_JOBS,
                    "is required with the sqs queue backend",
                ));
            }
            QueueBackend::Sqs { urls }
        } else {
            QueueBackend::Embedded
        };
        let blobs = if choice(vars::BLOB_BACKEND, "local", "s3")? {
            let buckets = HashMap::from([
                (Bucket::Uploads, required(vars::UPLOADS_BUCKET)?),
                (Bucket::Exports, required(vars::EXPORTS_BUCKET)?),
            ]);
            let force_path_style = matches!(
                get(vars::S3_FORCE_PATH_STYLE).as_deref(),
                Some("true" | "1")
            );
            BlobBackend::S3 {
                buckets,
                force_path_style,
            }
        } else {
            let public_url = get(vars::PUBLIC_URL).unwrap_or_else(|| format!("http://{addr}"));
            BlobBackend::Local { public_url }
        };
        let identity = if choice(vars::IDENTITY_BACKEND, "local", "cognito")? {
            IdentityBackend::Cognito {
                user_pool_id: required(vars::USER_POOL_ID)?,
                app: amanar_cognito::AppClient::new(
                    required(vars::USER_POOL_CLIENT_ID)?,
                    get(vars::USER_POOL_CLIENT_SECRET),
                ),
                enrolment: match (
                    get(vars::ENROLMENT_CLIENT_ID),
                    get(vars::ENROLMENT_CLIENT_SECRET),
                ) {
                    (Some(id), Some(secret)) => {
                        Some(amanar_cognito::AppClient::new(id, Some(secret)))
                    }
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(error(
                            vars::ENROLMENT_CLIENT_SECRET,
                            format!("is required with {}", vars::ENROLMENT_CLIENT_ID),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(error(
                            vars::ENROLMENT_CLIENT_ID,
                            format!("is required with {}", vars::ENROLMENT_CLIENT_SECRET),
                        ));
                    }
                },
                pre_token_trigger: matches!(
                    get(vars::USER_POOL_PRE_TOKEN_TRIGGER).as_deref(),
                    Some("true" | "1")
                ),
            }
        } else {
            IdentityBackend::Local {
                issuer: get(vars::PUBLIC_URL).unwrap_or_else(|| format!("http://{addr}")),
            }
        };
        let mail = if choice(vars::MAIL_BACKEND, "local", "ses")? {
            MailBackend::Ses {
                from: required(vars::MAIL_FROM)?,
            }
        } else {
            MailBackend::Local
        };
        let first_admin = match (get(vars::ADMIN_EMAIL), get(vars::ADMIN_PASSWORD)) {
            (Some(email), Some(password)) => Some((email, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(error(
                    vars::ADMIN_PASSWORD,
                    "is required with AMANAR_ADMIN_EMAIL",
                ));
            }
            (None, Some(_)) => {
                return Err(error(
                    vars::ADMIN_EMAIL,
                    "is required with AMANAR_ADMIN_PASSWORD",
                ));
            }
        };
        let mut social = Vec::new();
        for provider in amanar_accounts::social::PROVIDERS {
            let part = |p: &str| get(&vars::social(provider, p));
            if let Some(issuer) = part("ISSUER") {
                let need = |p: &str| {
                    part(p).ok_or_else(|| ConfigError {
                        variable: if p == "CLIENT_ID" {
                            "AMANAR_SOCIAL_<PROVIDER>_CLIENT_ID"
                        } else {
                            "AMANAR_SOCIAL_<PROVIDER>_CLIENT_SECRET"
                        },
                        problem: format!("is required for {provider} with its ISSUER"),
                    })
                };
                social.push((
                    provider.to_owned(),
                    amanar_accounts::social::Mode::Oidc {
                        issuer,
                        client_id: need("CLIENT_ID")?,
                        client_secret: need("CLIENT_SECRET")?,
                    },
                ));
            }
        }
        if let (Some(domain), IdentityBackend::Cognito { app, .. }) =
            (get(vars::COGNITO_DOMAIN_URL), &identity)
        {
            for provider in get(vars::SOCIAL_PROVIDERS)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let identity_provider = match provider {
                    "google" => "Google",
                    "linkedin" => "LinkedIn",
                    other => {
                        return Err(error(
                            vars::SOCIAL_PROVIDERS,
                            format!("names an unknown provider {other:?}"),
                        ));
                    }
                };
                social.push((
                    provider.to_owned(),
                    amanar_accounts::social::Mode::HostedUi {
                        base_url: domain.clone(),
                        client_id: app.id.clone(),
                        client_secret: app.secret().map(str::to_owned),
                        identity_provider: identity_provider.into(),
                    },
                ));
            }
        }
        let social_callback_url = get(vars::SOCIAL_CALLBACK_URL).unwrap_or_else(|| {
            format!(
                "{}/v1/auth/social/callback",
                get(vars::PUBLIC_URL).unwrap_or_else(|| format!("http://{addr}"))
            )
        });
        let json_logs = match get(vars::LOG_FORMAT).as_deref() {
            None => face == Face::Lambda,
            Some("json") => true,
            Some("text") => false,
            Some(other) => {
                return Err(error(
                    vars::LOG_FORMAT,
                    format!("must be json or text, not {other:?}"),
                ));
            }
        };
        let catalogue_refresh = Duration::from_millis(number(
            vars::CATALOGUE_REFRESH_MS,
            if matches!(table, TableBackend::Embedded) {
                0
            } else {
                1000
            },
        )?);
        let payments = if choice(vars::PAYMENTS_BACKEND, "local", "stripe")? {
            PaymentsBackend::Stripe {
                // Only the functions that take payments get the key (template.yaml): it is
                // asked for when the adapter is built, not here.
                secret_key: get(vars::STRIPE_SECRET_KEY),
                api_base: get(vars::STRIPE_API_BASE)
                    .unwrap_or_else(|| "https://api.stripe.com/".into()),
            }
        } else {
            PaymentsBackend::Local
        };
        let webhook_secrets = match get(vars::STRIPE_WEBHOOK_SECRET) {
            Some(list) => Some(
                amanar_orders::SigningSecrets::parse(&list)
                    .ok_or_else(|| error(vars::STRIPE_WEBHOOK_SECRET, "lists no secret"))?,
            ),
            // Only the webhook needs them: asked for when it is built.
            None => None,
        };
        // At most a day: Stripe keeps an idempotency key 24 hours, and a retried payment creation
        // must find the first.
        let ttl_secs = number(vars::ORDER_TTL_SECS, 1800)?;
        if !(1..=86_400).contains(&ttl_secs) {
            return Err(error(vars::ORDER_TTL_SECS, "must be 1 to 86400 seconds"));
        }
        let fee_bps = number(vars::PLATFORM_FEE_BPS, 500)?;
        if fee_bps > 5000 {
            return Err(error(vars::PLATFORM_FEE_BPS, "must be at most 5000 (50 %)"));
        }
        let payment_methods: Vec<String> = get(vars::PAYMENT_METHODS)
            .unwrap_or_else(|| "card".into())
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        if payment_methods.is_empty()
            || payment_methods
                .iter()
                .any(|m| !m.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        {
            return Err(error(
                vars::PAYMENT_METHODS,
                "lists payment method types such as card,sepa_debit",
            ));
        }
        let max_unpaid = number(vars::MAX_UNPAID_ORDERS, 20)?;
        if !(1..=100_000).contains(&max_unpaid) {
            return Err(error(vars::MAX_UNPAID_ORDERS, "must be 1 to 100000 orders"));
        }
        let orders = amanar_orders::OrderSettings {
            ttl: chrono::TimeDelta::seconds(ttl_secs as i64),
            fee_basis_points: fee_bps as u32,
            payment_methods,
            max_unpaid: max_unpaid as u32,
        };
        Ok(Config {
            face,
            data_dir,
            addr,
            expose: flag(vars::EXPOSE)?,
            table,
            queue,
            blobs,
            identity,
            mail,
            first_admin,
            social,
            social_callback_url,
            rate_limit_per_user: number(vars::RATE_LIMIT_USER, 600)?.clamp(1, u32::MAX as u64)
                as u32,
            rate_limit_per_key: number(vars::RATE_LIMIT_KEY, 1200)?.clamp(1, u32::MAX as u64)
                as u32,
            rate_limit_auth_per_address: number(vars::RATE_LIMIT_AUTH_ADDRESS, 120)?
                .clamp(1, u32::MAX as u64) as u32,
            housekeeping_every: Duration::from_secs(number(vars::HOUSEKEEPING_SECS, 300)?.max(1)),
            retry_base: Duration::from_millis(number(vars::RETRY_BASE_MS, 2000)?),
            json_logs,
            buffer_policy: amanar_marketplace::issuance::BufferPolicy::parse(
                &get(vars::BUFFER_SHARES).unwrap_or_default(),
            )
            .map_err(|e| error(vars::BUFFER_SHARES, e))?,
            catalogue_refresh,
            payments,
            webhook_secrets,
            orders,
            public_url: get(vars::PUBLIC_URL)
                .or_else(|| (face == Face::Local).then(|| format!("http://{addr}"))),
        })
    }

    /// Whether any port uses the embedded database (so the data directory must be opened).
    pub fn uses_embedded_store(&self) -> bool {
        self.table == TableBackend::Embedded || self.queue == QueueBackend::Embedded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(face: Face, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(face, |name| map.get(name).cloned())
    }

    #[test]
    fn order_settings_are_checked_and_stripe_needs_its_key_only_where_it_is_built() {
        let config_of = |vars: &[(&str, &str)]| config(Face::Local, vars);
        let local = config_of(&[]).unwrap();
        assert_eq!(local.payments, PaymentsBackend::Local);
        assert_eq!(local.orders.fee_basis_points, 500);
        assert_eq!(local.orders.ttl, chrono::TimeDelta::minutes(30));
        for (name, value) in [
            (vars::ORDER_TTL_SECS, "0"),
            (vars::MAX_UNPAID_ORDERS, "0"),
            (vars::ORDER_TTL_SECS, "86401"),
            (vars::PLATFORM_FEE_BPS, "5001"),
            (vars::PAYMENT_METHODS, "card,Card"),
            (vars::STRIPE_WEBHOOK_SECRET, " , "),
        ] {
            assert_eq!(
                config_of(&[(name, value)]).unwrap_err().variable,
                name,
                "{name}={value}"
            );
        }
        // Stripe without its key still configures: the adapter asks for the key when it is built,
        // in the functions that take payments only.
        let stripe = config_of(&[(vars::PAYMENTS_BACKEND, "stripe")]).unwrap();
        assert!(matches!(
            &stripe.payments,
            PaymentsBackend::Stripe {
                secret_key: None,
                ..
            }
        ));
        let keyed = PaymentsBackend::Stripe {
            secret_key: Some("sk_live_x".into()),
            api_base: "b".into(),
        };
        assert!(!format!("{keyed:?}").contains("sk_live"));
    }

    #[test]
    fn the_local_face_needs_no_configuration_at_all() {
        let config = config(Face::Local, &[]).unwrap();
        assert_eq!(
            (config.table, config.queue),
            (TableBackend::Embedded, QueueBackend::Embedded)
        );
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(
            config.blobs,
            BlobBackend::Local {
                public_url: "http://127.0.0.1:3000".into()
            }
        );
    }

    #[test]
    fn the_cognito_clients_come_with_their_secrets_or_not_at_all() {
        let cognito = [
            (vars::IDENTITY_BACKEND, "cognito"),
            (vars::USER_POOL_ID, "eu-west-1_x"),
            (vars::USER_POOL_CLIENT_ID, "app"),
            (vars::USER_POOL_CLIENT_SECRET, "app-secret"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            config(Face::Local, &[&cognito[..], extra].concat())
        };
        let IdentityBackend::Cognito {
            app,
            enrolment,
            pre_token_trigger,
            ..
        } = with(&[
            (vars::ENROLMENT_CLIENT_ID, "enrol"),
            (vars::ENROLMENT_CLIENT_SECRET, "enrol-secret"),
            (vars::USER_POOL_PRE_TOKEN_TRIGGER, "true"),
        ])
        .unwrap()
        .identity
        else {
            panic!("the Cognito backend");
        };
        assert_eq!(app.secret(), Some("app-secret"));
        assert_eq!(enrolment.unwrap().secret(), Some("enrol-secret"));
        assert!(pre_token_trigger);
        assert!(matches!(
            with(&[]).unwrap().identity,
            IdentityBackend::Cognito {
                enrolment: None,
                pre_token_trigger: false,
                ..
            }
        ));
        // Half a pair is a mistake, named: never a silent fallback to the app client.
        assert_eq!(
            with(&[(vars::ENROLMENT_CLIENT_ID, "enrol")])
                .unwrap_err()
                .variable,
            vars::ENROLMENT_CLIENT_SECRET
        );
        assert_eq!(
            with(&[(vars::ENROLMENT_CLIENT_SECRET, "s")])
                .unwrap_err()
                .variable,
            vars::ENROLMENT_CLIENT_ID
        );
    }

    #[test]
    fn a_lambda_without_its_table_name_fails_naming_the_variable() {
        let error = config(Face::Lambda, &[]).unwrap_err();
        assert_eq!(error.variable, vars::TABLE_NAME);
        assert_eq!(
            error.to_string(),
            "configuration: AMANAR_TABLE_NAME is required"
        );
    }

    #[test]
    fn malformed_values_are_named() {
        assert_eq!(
            config(Face::Local, &[(vars::ADDR, "nope")])
                .unwrap_err()
                .variable,
            vars::ADDR
        );
        assert_eq!(
            config(Face::Local, &[(vars::TABLE_BACKEND, "postgres")])
                .unwrap_err()
                .variable,
            vars::TABLE_BACKEND
        );
        assert_eq!(
            config(Face::Local, &[(vars::HOUSEKEEPING_SECS, "soon")])
                .unwrap_err()
                .variable,
            vars::HOUSEKEEPING_SECS
        );
    }

    #[test]
    fn any_port_can_switch_to_its_aws_adapter() {
        let config = config(
            Face::Local,
            &[
                (vars::QUEUE_BACKEND, "sqs"),
                (vars::QUEUE_URL_JOBS, "http://q/jobs"),
            ],
        )
        .unwrap();
        assert_eq!(config.table, TableBackend::Embedded);
        assert_eq!(
            config.queue,
            QueueBackend::Sqs {
                urls: HashMap::from([(QueueName::Jobs, "http://q/jobs".to_owned())])
            }
        );
    }
}
