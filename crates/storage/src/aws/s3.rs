//! [`ObjectStore`] on an S3 bucket.
//!
//! Keys are used as given (the domain's `ObjectKey` already has the
//! documented layout `<chat_id>/original/...` and `<chat_id>/predicted/...`).
//! [`PutMode::CreateOnly`] is an S3 conditional write (`If-None-Match: *`),
//! so "never overwrite an original" holds even when two writers race: S3
//! (and moto) answer 412 Precondition Failed to the loser, with no window
//! between a check and the write.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use polybot_domain::ObjectKey;

use super::error::{classify, service_code, status};
use crate::{ObjectStore, PutMode, Result, StorageError};

const BACKEND: &str = "S3";

/// Images in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
}

impl S3ObjectStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Start-up check: the bucket exists and we may use it. `setting` names
    /// where the bucket name came from (e.g. `POLYBOT_BUCKET`) for the error.
    pub async fn verify(&self, setting: &str) -> Result<()> {
        if self.bucket.is_empty() {
            return Err(StorageError::config(format!("{setting} is not set")));
        }
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(super::startup_error(
                setting,
                &self.bucket,
                "the bucket does not exist or is not accessible",
                self.client.config().region(),
                classify(BACKEND, &format!("HeadBucket {}", self.bucket), e),
            )),
        }
    }

    fn url(&self, key: &ObjectKey) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
        mode: PutMode,
    ) -> Result<()> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        if mode == PutMode::CreateOnly {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if mode == PutMode::CreateOnly
                    && (status(&e) == Some(412)
                        || service_code(&e) == Some("PreconditionFailed")) =>
            {
                Err(StorageError::AlreadyExists(self.url(key)))
            }
            Err(e) => Err(classify(
                BACKEND,
                &format!("PutObject {}", self.url(key)),
                e,
            )),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || status(&e) == Some(404) && service_code(&e) != Some("NoSuchBucket") =>
            {
                return Err(StorageError::NotFound(self.url(key)));
            }
            Err(e) => {
                return Err(classify(
                    BACKEND,
                    &format!("GetObject {}", self.url(key)),
                    e,
                ));
            }
        };
        // The body streams after the headers; a failure here is the
        // connection dropping, which a retry can fix.
        let body = output.body.collect().await.map_err(|e| {
            StorageError::unavailable(BACKEND, format!("reading {}", self.url(key)), e)
        })?;
        Ok(body.into_bytes())
    }

    async fn check(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(BACKEND, &format!("HeadBucket {}", self.bucket), e))
    }
}
