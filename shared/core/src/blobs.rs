//! The Blobs port: private object storage with presigned upload and download URLs.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The product's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bucket {
    /// User uploads: land under `quarantine/`, are checked, then move to `accepted/` or `rejected/`.
    Uploads,
    /// Files the product makes: reports, certificates, data exports.
    Exports,
}

impl Bucket {
    pub const ALL: [Bucket; 2] = [Bucket::Uploads, Bucket::Exports];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Uploads => "uploads",
            Bucket::Exports => "exports",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == name)
    }
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
}

/// What a presigned upload allows: one PUT of exactly `content_length` bytes of `content_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPolicy {
    pub content_type: String,
    pub content_length: u64,
    pub expires_in: Duration,
}

/// A request a client can make without credentials until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send as given (they are part of the signature).
    pub headers: Vec<(String, String)>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum BlobError {
    #[error("invalid blob request: {0}")]
    Invalid(String),
    #[error("blob backend failed: {0}")]
    Backend(String),
}

/// Longest lifetime of a presigned URL.
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest object a presigned upload may carry (single PUT).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// Object keys are relative paths of safe characters whose segments never start with a dot, so the
/// filesystem adapter can never escape its directory (and keeps its metadata under `.meta/`) and S3
/// keys stay printable.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.'))
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BlobError::Invalid(format!("invalid object key {key:?}")))
    }
}

/// A presigned URL lives more than zero seconds and at most [`MAX_PRESIGN`].
pub fn validate_expiry(expires_in: Duration) -> Result<(), BlobError> {
    if expires_in.is_zero() || expires_in > MAX_PRESIGN {
        return Err(BlobError::Invalid(
            "a presigned URL must expire within 7 days".into(),
        ));
    }
    Ok(())
}

pub fn validate_upload_policy(policy: &UploadPolicy) -> Result<(), BlobError> {
    if policy.content_length == 0 || policy.content_length > MAX_UPLOAD_BYTES {
        return Err(BlobError::Invalid(format!(
            "an upload must hold 1 to {MAX_UPLOAD_BYTES} bytes"
        )));
    }
    if policy.expires_in.is_zero() || policy.expires_in > MAX_PRESIGN {
        return Err(BlobError::Invalid(
            "a presigned URL must expire within 7 days".into(),
        ));
    }
    if policy.content_type.is_empty()
        || !policy
            .content_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(BlobError::Invalid("invalid content type".into()));
    }
    Ok(())
}

#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError>;
    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Blob>, BlobError>;
    /// Deleting a missing object succeeds.
    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), BlobError>;
    /// A URL for one PUT of exactly the declared length and content type.
    async fn presign_upload(
        &self,
        bucket: Bucket,
        key: &str,
        policy: &UploadPolicy,
    ) -> Result<PresignedRequest, BlobError>;
    /// A URL to GET the object until it expires.
    async fn presign_download(
        &self,
        bucket: Bucket,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_cannot_escape_or_hold_odd_characters() {
        assert!(validate_key("quarantine/01J/report.pdf").is_ok());
        for bad in [
            "",
            "/abs",
            "a/../b",
            "a//b",
            "a/./b",
            "a/.meta/b",
            "sp ace",
            "a\\b",
            "ü",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
