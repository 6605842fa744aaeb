//! Blobs port on Amazon S3 with presigned URLs
