//! `S3Blobs`: the Blobs port on Amazon S3. Presigned uploads sign the content type and the exact
//! content length, so S3 refuses any other body than the one declared.

use std::collections::HashMap;
use std::time::Duration;

use amanar_core::blobs::{self, Blob, BlobError, Blobs, Bucket, PresignedRequest, UploadPolicy};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

#[derive(Clone)]
pub struct S3Blobs {
    client: Client,
    buckets: HashMap<Bucket, String>,
}

fn backend_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    operation: &str,
    error: SdkError<E, R>,
) -> BlobError {
    let code = error.code().unwrap_or_default().to_owned();
    let message = error
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{error:?}"));
    BlobError::Backend(format!("S3 {operation} failed: {code} {message}"))
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, BlobError> {
    blobs::validate_expiry(expires_in)?;
    PresigningConfig::expires_in(expires_in).map_err(|e| BlobError::Invalid(e.to_string()))
}

fn presigned(
    request: aws_sdk_s3::presigning::PresignedRequest,
    expires_in: Duration,
) -> PresignedRequest {
    PresignedRequest {
        method: request.method().to_owned(),
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
            .collect(),
        expires_at: chrono::Utc::now() + chrono::Duration::from_std(expires_in).unwrap_or_default(),
    }
}

impl S3Blobs {
    /// `buckets` maps each product bucket to its S3 bucket name.
    pub fn new(client: Client, buckets: HashMap<Bucket, String>) -> Self {
        Self { client, buckets }
    }

    fn bucket(&self, bucket: Bucket) -> Result<&str, BlobError> {
        self.buckets
            .get(&bucket)
            .map(String::as_str)
            .ok_or_else(|| {
                BlobError::Invalid(format!(
                    "no S3 bucket is configured for {}",
                    bucket.as_str()
                ))
            })
    }

    /// Creates the buckets (for emulators and tests).
    pub async fn create_buckets(&self) -> Result<(), BlobError> {
        let region = self
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        for name in self.buckets.values() {
            let mut request = self.client.create_bucket().bucket(name);
            // Outside us-east-1, S3 wants the region restated as the location constraint.
            if !region.is_empty() && region != "us-east-1" {
                request = request.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            region.as_str(),
                        ))
                        .build(),
                );
            }
            request
                .send()
                .await
                .map_err(|e| backend_error("CreateBucket", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(
        &self,
        bucket: Bucket,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError> {
        blobs::validate_key(key)?;
        self.client
            .put_object()
            .bucket(self.bucket(bucket)?)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| backend_error("PutObject", e))?;
        Ok(())
    }

    async fn get(&self, bucket: Bucket, key: &str) -> Result<Option<Blob>, BlobError> {
        blobs::validate_key(key)?;
        let output = match self
            .client
            .get_object()
            .bucket(self.bucket(bucket)?)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(error) => return Err(backend_error("GetObject", error)),
        };
        let content_type = output
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Backend(format!("S3 GetObject body: {e}")))?
            .into_bytes();
        Ok(Some(Blob {
            bytes,
            content_type,
        }))
    }

    async fn delete(&self, bucket: Bucket, key: &str) -> Result<(), BlobError> {
        blobs::validate_key(key)?;
        self.client
            .delete_object()
            .bucket(self.bucket(bucket)?)
            .key(key)
            .send()
            .await
            .map_err(|e| backend_error("DeleteObject", e))?;
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
        let request = self
            .client
            .put_object()
            .bucket(self.bucket(bucket)?)
            .key(key)
            .content_type(&policy.content_type)
            .content_length(policy.content_length as i64)
            .presigned(presigning(policy.expires_in)?)
            .await
            .map_err(|e| backend_error("PutObject presign", e))?;
        Ok(presigned(request, policy.expires_in))
    }

    async fn presign_download(
        &self,
        bucket: Bucket,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        blobs::validate_key(key)?;
        let request = self
            .client
            .get_object()
            .bucket(self.bucket(bucket)?)
            .key(key)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| backend_error("GetObject presign", e))?;
        Ok(presigned(request, expires_in))
    }
}
