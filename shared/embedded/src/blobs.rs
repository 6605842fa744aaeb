//! `LocalBlobs`: the Blobs port on the local filesystem, with HMAC-signed URLs that the local runtime
//! serves and verifies itself (`/_local/blobs/{bucket}/{key}`).
//!
//! An object is a file `<root>/<bucket>/<key>`; its content type lives in `<root>/<bucket>/.meta/<key>`
//! (keys never have segments starting with a dot). Writes go to a temporary file that is synced and
//! renamed into place, so a reader never sees half an object.

use std::path::{Path, PathBuf};
use std::time::Duration;

use amanar_core::blobs::{self, Blob, BlobError, Blobs, Bucket, PresignedRequest, UploadPolicy};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Route prefix under which the local runtime serves signed blob URLs.
pub const ROUTE_PREFIX: &str = "/_local/blobs";

#[derive(Clone)]
pub struct LocalBlobs {
    root: PathBuf,
    base_url: String,
    secret: Vec<u8>,
}

/// What a verified signed request allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedAccess {
    Upload {
        content_type: String,
        content_length: u64,
    },
    Download,
}

/// Query parameters of a signed URL.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Signature {
    pub expires: i64,
    pub ct: Option<String>,
    pub len: Option<u64>,
    pub sig: String,
}

fn storage<E: std::fmt::Display>(error: E) -> BlobError {
    BlobError::Backend(error.to_string())
}

impl LocalBlobs {
    /// `base_url` is where the local runtime listens (e.g. `http://127.0.0.1:3000`); `secret` signs URLs.
    pub fn new(
        root: impl Into<PathBuf>,
        base_url: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            root: root.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            secret: secret.into(),
        }
    }

    fn path(&self, bucket: Bucket, key: &str) -> Result<PathBuf, BlobError> {
        blobs::validate_key(key)?;
        Ok(self.root.join(bucket.as_str()).join(key))
    }

    fn meta_path(&self, bucket: Bucket, key: &str) -> PathBuf {
        self.root.join(bucket.as_str()).join(".meta").join(key)
    }

    fn mac(
        &self,
        method: &str,
        bucket: Bucket,
        key: &str,
        expires: i64,
        ct: Option<&str>,
        len: Option<u64>,
    ) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        let canonical = format!(
            "{method}\n{}\n{key}\n{expires}\n{}\n{}",
            bucket.as_str(),
            ct.unwrap_or(""),
            len.map(|l| l.to_string()).unwrap_or_default()
        );
        mac.update(canonical.as_bytes());
        mac
    }

    fn sign(
        &self,
        method: &str,
        bucket: Bucket,
        key: &str,
        expires: i64,
        ct: Option<&str>,
        len: Option<u64>,
    ) -> String {
        hex::encode(
            self.mac(method, bucket, key, expires, ct, len)
                .finalize()
                .into_bytes(),
        )
    }

    /// Checks a signed request (constant-time), returning what it allows. `None` for a bad, foreign
    /// or expired signature.
    pub fn verify(
        &self,
        method: &str,
        bucket: Bucket,
        key: &str,
        signature: &Signature,
        now: DateTime<Utc>,
    ) -> Option<SignedAccess> {
        if signature.expires < now.timestamp() || blobs::validate_key(key).is_err() {
            return None;
        }
        let given = hex::decode(&signature.sig).ok()?;
        let ct = signature.ct.as_deref();
        self.mac(method, bucket, key, signature.expires, ct, signature.len)
            .verify_slice(&given)
            .ok()?;
        match (method, ct, signature.len) {
            ("PUT", Some(ct), Some(len)) => Some(SignedAccess::Upload {
                content_type: ct.to_owned(),
                content_length: len,
            }),
            ("GET", None, None) => Some(SignedAccess::Download),
            _ => None,
        }
    }

    fn url(&self, bucket: Bucket, key: &str, query: &str) -> String {
        format!(
            "{}{ROUTE_PREFIX}/{}/{key}?{query}",
            self.base_url,
            bucket.as_str()
        )
    }
}

fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let parent = path
        .parent()
        .ok_or_else(|| BlobError::Invalid("object path has no parent".into()))?;
    tokio::fs::create_dir_all(parent).await.map_err(storage)?;
    let temporary = parent.join(format!(".tmp-{}", ulid::Ulid::new()));
    let result = async {
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(&temporary).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    result.map_err(storage)
}

fn expiry(now: DateTime<Utc>, expires_in: Duration) -> Result<DateTime<Utc>, BlobError> {
    blobs::validate_expiry(expires_in)?;
    Ok(now + chrono::Duration::from_std(expires_in).map_err(storage)?)
}

#[async_trait]
impl Blobs for LocalBlobs {
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError> {
        let path = self.path(bucket, key)?;
        // Metadata first: a crash between the two leaves no object without its content type.
        write_atomically(&self.meta_path(bucket, key), content_type.as_bytes()).await?;
        write_atomically(&path, &bytes).await
    }

    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Blob>, BlobError> {
        let path = self.path(bucket, key)?;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let content_type = tokio::fs::read_to_string(self.meta_path(bucket, key))
            .await
            .unwrap_or_else(|_| "application/octet-stream".to_owned());
        Ok(Some(Blob {
            bytes: bytes.into(),
            content_type,
        }))
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), BlobError> {
        let path = self.path(bucket, key)?;
        for path in [path, self.meta_path(bucket, key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(storage(e)),
            }
        }
        Ok(())
    }

    async fn presign_upload(
        &self,
        bucket: Bucket,
        key: &str,
        policy: &UploadPolicy,
    ) -> Result<PresignedRequest, BlobError> {
        blobs::validate_key(key)?;
        blobs::validate_upload_policy(policy)?;
        let expires_at = expiry(Utc::now(), policy.expires_in)?;
        let expires = expires_at.timestamp();
        let sig = self.sign(
            "PUT",
            bucket,
            key,
            expires,
            Some(&policy.content_type),
            Some(policy.content_length),
        );
        let query = format!(
            "expires={expires}&ct={}&len={}&sig={sig}",
            encode_query_value(&policy.content_type),
            policy.content_length
        );
        Ok(PresignedRequest {
            method: "PUT".into(),
            url: self.url(bucket, key, &query),
            headers: vec![
                ("content-type".into(), policy.content_type.clone()),
                ("content-length".into(), policy.content_length.to_string()),
            ],
            expires_at,
        })
    }

    async fn presign_download(
        &self,
        bucket: Bucket,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        blobs::validate_key(key)?;
        let expires_at = expiry(Utc::now(), expires_in)?;
        let expires = expires_at.timestamp();
        let sig = self.sign("GET", bucket, key, expires, None, None);
        Ok(PresignedRequest {
            method: "GET".into(),
            url: self.url(bucket, key, &format!("expires={expires}&sig={sig}")),
            headers: vec![],
            expires_at,
        })
    }
}
