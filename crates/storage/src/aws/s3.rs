//! [`ObjectStore`] on an S3 bucket.
//!
//! Keys are used as given (the domain's `ObjectKey` already has the
//! documented layout `<chat_id>/original/...` and `<chat_id>/predicted/...`).
//! [`PutMode::CreateOnly`] is an S3 conditional write (`If-None-Match: *`),
//! so "never overwrite an original" holds even when two writers race: S3
//! (and moto) answer 412 Precondition Failed to the loser, with no window
//! between a check and the write.
//!
//! Erasing lists every version and delete marker under a prefix
//! (`ListObjectVersions`) and deletes each by its version id
//! (`DeleteObjects`, up to 1,000 a call, page by page), so a versioned
//! bucket (Terraform's is) keeps no noncurrent copy of an erased picture.
//! On an unversioned bucket the version id is `null`, which S3 takes too.
//! Expiry is the bucket's lifecycle rule, not ours.

use std::collections::BTreeSet;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use polybot_domain::{ChatId, ObjectKey};

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

    /// Deletes every version and delete marker of the keys under `prefix`
    /// that `wanted` accepts; returns how many of those keys had a current
    /// version (existed, for a reader).
    async fn erase_versions(&self, prefix: &str, wanted: impl Fn(&str) -> bool) -> Result<u64> {
        let what = || format!("s3://{}/{prefix}", self.bucket);
        let mut existed = BTreeSet::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| classify(BACKEND, &format!("ListObjectVersions {}", what()), e))?;
            let mut doomed = Vec::new();
            for version in page.versions() {
                let Some(key) = version.key().filter(|k| wanted(k)) else {
                    continue;
                };
                if version.is_latest() == Some(true) {
                    existed.insert(key.to_owned());
                }
                doomed.push((key, version.version_id()));
            }
            for marker in page.delete_markers() {
                if let Some(key) = marker.key().filter(|k| wanted(k)) {
                    doomed.push((key, marker.version_id()));
                }
            }
            self.delete_versions(&doomed, &what()).await?;
            if page.is_truncated() != Some(true) {
                return Ok(existed.len() as u64);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// One `DeleteObjects` of these versions (a page holds at most 1,000,
    /// the call's most). A key the call could not delete fails the whole
    /// erasure, to be asked again.
    async fn delete_versions(&self, doomed: &[(&str, Option<&str>)], what: &str) -> Result<()> {
        if doomed.is_empty() {
            return Ok(());
        }
        let objects = doomed
            .iter()
            .map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(*key)
                    .set_version_id(version.map(str::to_owned))
                    .build()
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StorageError::invalid_from(format!("deleting {what}"), e))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StorageError::invalid_from(format!("deleting {what}"), e))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(BACKEND, &format!("DeleteObjects {what}"), e))?;
        match out.errors().first() {
            None => Ok(()),
            Some(failed) => Err(StorageError::Unavailable {
                backend: BACKEND,
                what: format!(
                    "DeleteObjects {what}: {} of {} not deleted, e.g. {} ({}: {})",
                    out.errors().len(),
                    doomed.len(),
                    failed.key().unwrap_or("?"),
                    failed.code().unwrap_or("?"),
                    failed.message().unwrap_or("")
                ),
                source: None,
            }),
        }
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

    async fn erase_chat(&self, chat: ChatId) -> Result<u64> {
        // The slash: chat 12's prefix must not take chat 123's objects.
        self.erase_versions(&format!("{chat}/"), |_| true).await
    }

    async fn erase(&self, keys: &[ObjectKey]) -> Result<u64> {
        let mut existed = 0;
        for key in keys {
            // A key is also the prefix of longer keys (`x.jpg` of
            // `x.jpg.bak`): only its own versions go.
            existed += self
                .erase_versions(key.as_str(), |k| k == key.as_str())
                .await?;
        }
        Ok(existed)
    }

    async fn sweep_expired(&self, _now: SystemTime) -> Result<u64> {
        // The bucket's lifecycle rule expires pictures.
        Ok(0)
    }
}
