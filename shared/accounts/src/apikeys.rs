//! API keys of organisations, for partner integrations (`X-Api-Key`).
//!
//! A key is `amk_` + 32 random bytes (base64url): shown once at creation, stored only as its
//! SHA-256 (a key is high-entropy, so a fast hash is enough; the lookup is by hash and the stored
//! hash is compared again in constant time). Keys carry scopes; revoking deletes the lookup item, so
//! a revoked key stops working on its next request.

use std::sync::Arc;

use amanar_core::table::{
    Condition, Index, Query, SortKey, Table, TableError, Update, WriteOp, items,
};
use amanar_core::{Clock, keys, new_id};
use amanar_http::{ApiKeyCaller, Scope};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// Most keys an organisation keeps.
pub const MAX_KEYS: usize = 50;
/// How stale `lastUsedAt` may get before a use updates it.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// A key as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub key_id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Lookup {
    key_id: String,
    org_id: String,
    scopes: Vec<String>,
    hash: String,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[derive(Clone)]
pub struct ApiKeyStore {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
}

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("the organisation has {MAX_KEYS} keys; revoke one first")]
    TooMany,
    #[error(transparent)]
    Table(#[from] TableError),
}

impl ApiKeyStore {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Self {
        Self { table, clock }
    }

    pub async fn list(&self, org_id: &str) -> Result<Vec<ApiKey>, TableError> {
        let page = self
            .table
            .query(
                &Query::partition(Index::Primary, keys::org_partition(org_id))
                    .sort(SortKey::BeginsWith(keys::API_KEYS.into()))
                    .limit(MAX_KEYS * 4),
            )
            .await?;
        page.items.into_iter().map(items::parse).collect()
    }

    /// Makes a key with some of the `known` scopes (every scope a context declares); returns it
    /// with its secret, which is never shown again.
    pub async fn create(
        &self,
        org_id: &str,
        created_by: &str,
        name: &str,
        scopes: &[String],
        known: &[Scope],
    ) -> Result<(ApiKey, String), KeyError> {
        let listed = || {
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(KeyError::Invalid("name must be 1 to 100 characters".into()));
        }
        if scopes.is_empty() {
            return Err(KeyError::Invalid(format!(
                "scopes must name at least one of: {}",
                listed()
            )));
        }
        if let Some(bad) = scopes
            .iter()
            .find(|s| !known.iter().any(|k| k.as_str() == s.as_str()))
        {
            return Err(KeyError::Invalid(format!(
                "{bad:?} is not a scope; scopes are: {}",
                listed()
            )));
        }
        let active = self
            .list(org_id)
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .count();
        if active >= MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let secret = format!("amk_{}", URL_SAFE_NO_PAD.encode(random));
        let key = ApiKey {
            key_id: new_id("key"),
            org_id: org_id.to_owned(),
            name: name.to_owned(),
            scopes: scopes.clone(),
            prefix: secret[..12].to_owned(),
            created_by: created_by.to_owned(),
            created_at: self.clock.now(),
            last_used_at: None,
            revoked_at: None,
        };
        let digest = hash(&secret);
        let lookup = Lookup {
            key_id: key.key_id.clone(),
            org_id: org_id.to_owned(),
            scopes,
            hash: digest.clone(),
        };
        let mut listing_item = items::with_key(&keys::api_key_listing(org_id, &key.key_id), &key)?;
        listing_item.insert("hash".into(), digest.clone().into());
        let mut lookup_item = items::with_key(&keys::api_key_lookup(&digest), &lookup)?;
        keys::api_key_id(&key.key_id).insert_into(&mut lookup_item);
        self.table
            .write(vec![
                WriteOp::put(lookup_item).when(Condition::NotExists),
                WriteOp::put(listing_item).when(Condition::NotExists),
            ])
            .await?;
        Ok((key, secret))
    }

    /// Revokes a key of the organisation; `false` if it has no such active key.
    pub async fn revoke(&self, org_id: &str, key_id: &str) -> Result<bool, TableError> {
        let Some(item) = self
            .table
            .get(&keys::api_key_listing(org_id, key_id))
            .await?
        else {
            return Ok(false);
        };
        let listing_hash = item.get("hash").and_then(|h| h.as_str()).map(str::to_owned);
        let key: ApiKey = items::parse(item)?;
        if key.revoked_at.is_some() {
            return Ok(false);
        }
        // The lookup item is keyed by the hash; GSI1 finds it by key id.
        let page = self
            .table
            .query(&Query::partition(Index::Gsi1, keys::api_key_by_id(key_id)).limit(1))
            .await?;
        let mut ops = vec![
            WriteOp::update(
                keys::api_key_listing(org_id, key_id),
                Update::new().set("revokedAt", self.clock.now().to_rfc3339()),
            )
            .when(Condition::Exists),
        ];
        // The listing holds the lookup item's hash, so revocation does not depend on the
        // eventually consistent index; verification also refuses a revoked listing.
        let hash = listing_hash.or_else(|| {
            page.items
                .first()
                .and_then(|i| i.get("hash").and_then(|h| h.as_str()).map(str::to_owned))
        });
        if let Some(hash) = hash {
            ops.push(WriteOp::delete(keys::api_key_lookup(&hash)));
        }
        match self.table.write(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl amanar_http::auth::ApiKeys for ApiKeyStore {
    async fn verify(&self, secret: &str) -> Result<Option<ApiKeyCaller>, TableError> {
        if !secret.starts_with("amk_") || secret.len() > 100 {
            return Ok(None);
        }
        let digest = hash(secret);
        let Some(item) = self.table.get(&keys::api_key_lookup(&digest)).await? else {
            return Ok(None);
        };
        let lookup: Lookup = items::parse(item)?;
        if !bool::from(lookup.hash.as_bytes().ct_eq(digest.as_bytes())) {
            return Ok(None);
        }
        // Record the use, at most once a minute per key, without failing the request.
        let now = self.clock.now();
        let touch = WriteOp::update(
            keys::api_key_listing(&lookup.org_id, &lookup.key_id),
            Update::new()
                .set("lastUsedAt", now.to_rfc3339())
                .set("lastUsedEpoch", now.timestamp()),
        )
        .when(Condition::Exists);
        let listing = self
            .table
            .get(&keys::api_key_listing(&lookup.org_id, &lookup.key_id))
            .await?;
        let Some(listing) = listing.filter(|l| l.get("revokedAt").is_none_or(|v| v.is_null()))
        else {
            return Ok(None);
        };
        let stale = listing
            .get("lastUsedEpoch")
            .and_then(|v| v.as_i64())
            .is_none_or(|at| now.timestamp() - at >= LAST_USED_GRANULARITY_SECS);
        if stale && let Err(error) = self.table.write(vec![touch]).await {
            tracing::warn!(%error, "could not record an API key's last use");
        }
        Ok(Some(ApiKeyCaller {
            key_id: lookup.key_id,
            org_id: lookup.org_id,
            scopes: lookup.scopes,
        }))
    }
}
