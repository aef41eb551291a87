//! The `Detect` RPC's work: an operator's photo (bytes, or a key already in
//! the object store) becomes a request of [`ChatId::OPERATOR`], queued for
//! the detectors exactly like a chat's photo, and its record is watched
//! until the job ends. It runs on the detectors, not on the gateway: the
//! gateway has no model in production, and an operator's check then tests
//! the real path (queue, workers, storage, report).
//!
//! The record is read from the table, not awaited in memory: the detector
//! reports to whichever gateway its connection reaches, and every gateway
//! reads the same table.

use std::time::Duration;

use bytes::Bytes;
use polybot_domain::{
    ChatId, Job, JobKind, ObjectKey, PredictionId, PredictionRecord, PredictionStatus, UpdateId,
};
use polybot_storage::{Backends, PutMode, StorageError};
use tracing::info;

use crate::submit::{Submitted, submit};

/// The photo a `Detect` request names.
#[derive(Debug)]
pub enum DetectInput {
    /// The photo's bytes, stored under the operator's chat first.
    Bytes(Bytes),
    /// A photo already stored (a chat's original, say): read, not copied.
    Key(ObjectKey),
}

/// Why a `Detect` request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the photo is {size} bytes; the limit is {limit} (as for a chat's photo)")]
    TooLarge { size: u64, limit: u64 },
    #[error("the photo is empty")]
    Empty,
    #[error("no object {0} in the store")]
    NoSuchKey(ObjectKey),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "prediction {0} is still running; read it later with GetPrediction (its job stays queued)"
    )]
    StillRunning(PredictionId),
}

/// Queues operators' photos and waits for their results.
#[derive(Clone)]
pub struct OperatorDetect {
    backends: Backends,
    max_download: u64,
}

/// How often the record is read while a job runs: a detection takes
/// about 100 ms on a warm lane, so this adds at most that again.
const POLL_EVERY: Duration = Duration::from_millis(100);

impl OperatorDetect {
    pub fn new(backends: Backends, max_download: u64) -> Self {
        Self {
            backends,
            max_download,
        }
    }

    /// Stores the photo if it came as bytes, records and queues its job;
    /// returns the new prediction's id.
    pub async fn submit(
        &self,
        input: DetectInput,
        kind: JobKind,
    ) -> Result<PredictionId, DetectError> {
        let chat = ChatId::OPERATOR;
        let id = PredictionId::new();
        let original = match input {
            DetectInput::Bytes(bytes) => {
                let size = bytes.len() as u64;
                if size == 0 {
                    return Err(DetectError::Empty);
                }
                if size > self.max_download {
                    return Err(DetectError::TooLarge {
                        size,
                        limit: self.max_download,
                    });
                }
                let (extension, content_type) = sniff(&bytes);
                let key = ObjectKey::original(chat, id, extension);
                self.backends
                    .objects
                    .put(&key, bytes, content_type, PutMode::CreateOnly)
                    .await?;
                key
            }
            DetectInput::Key(key) => {
                // Read once to say "no such key" here rather than leave
                // the detector to fail on it; the size is bounded as a
                // chat's photo is.
                let bytes = match self.backends.objects.get(&key).await {
                    Ok(bytes) => bytes,
                    Err(StorageError::NotFound(_)) => return Err(DetectError::NoSuchKey(key)),
                    Err(e) => return Err(e.into()),
                };
                let size = bytes.len() as u64;
                if size > self.max_download {
                    return Err(DetectError::TooLarge {
                        size,
                        limit: self.max_download,
                    });
                }
                key
            }
        };
        let job = Job::photo(id, chat, 0, UpdateId(0), original, kind);
        match submit(&self.backends, job).await? {
            Submitted::Queued(id) => {
                info!(prediction_id = %id, "operator's photo queued");
                Ok(id)
            }
            // A new id has no earlier job.
            Submitted::AlreadyRan => Ok(id),
        }
    }

    /// The prediction's record once its job ended (succeeded or failed),
    /// read until `within` has passed.
    pub async fn wait(
        &self,
        id: PredictionId,
        within: Duration,
    ) -> Result<PredictionRecord, DetectError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(record) = self.backends.table.get(id).await?
                && record.status != PredictionStatus::Pending
            {
                return Ok(record);
            }
            if tokio::time::Instant::now() + POLL_EVERY > deadline {
                return Err(DetectError::StillRunning(id));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// The file extension and content type of a photo's bytes, by their
/// signature; anything else is stored as opaque bytes and the detector
/// answers that it is not an image.
fn sniff(bytes: &[u8]) -> (&'static str, &'static str) {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => ("jpg", "image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => ("png", "image/png"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => ("webp", "image/webp"),
        [b'G', b'I', b'F', b'8', ..] => ("gif", "image/gif"),
        [b'B', b'M', ..] => ("bmp", "image/bmp"),
        [b'I', b'I', 42, 0, ..] | [b'M', b'M', 0, 42, ..] => ("tiff", "image/tiff"),
        _ => ("bin", "application/octet-stream"),
    }
}

#[cfg(test)]
mod tests {
    use polybot_domain::{Action, FailureKind, JobResult, PredictionSummary};
    use polybot_storage::QueueStats;

    use super::*;
    use crate::fake::local_backends;

    #[test]
    fn photos_are_named_by_their_signature() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).0, "jpg");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n").0, "png");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").0, "webp");
        assert_eq!(sniff(b"not a picture").0, "bin");
    }

    #[tokio::test]
    async fn an_operators_photo_is_stored_and_queued_under_the_operator_chat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let detect = OperatorDetect::new(backends.clone(), 1024);
        let id = detect
            .submit(
                DetectInput::Bytes(Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2])),
                JobKind::Detect,
            )
            .await
            .expect("queued");
        let record = backends.table.get(id).await.expect("get").expect("record");
        assert_eq!(record.chat_id, ChatId::OPERATOR);
        assert_eq!(record.kind, Action::Detect);
        assert!(
            record
                .original_key
                .as_str()
                .starts_with(&format!("{}/original/", ChatId::OPERATOR))
        );
        let stored = backends
            .objects
            .get(&record.original_key)
            .await
            .expect("stored");
        assert_eq!(stored.len(), 6);
        let jobs = backends
            .jobs
            .receive(10, Duration::ZERO)
            .await
            .expect("receive");
        assert_eq!(jobs.len(), 1);
        let job = Job::parse(&jobs[0].body).expect("a job");
        assert_eq!((job.prediction_id, job.chat_id), (id, ChatId::OPERATOR));
    }

    #[tokio::test]
    async fn oversized_empty_and_missing_photos_are_refused_before_queueing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let detect = OperatorDetect::new(backends.clone(), 4);
        let big = detect
            .submit(
                DetectInput::Bytes(Bytes::from_static(b"12345")),
                JobKind::Detect,
            )
            .await;
        assert!(matches!(
            big,
            Err(DetectError::TooLarge { size: 5, limit: 4 })
        ));
        let empty = detect
            .submit(DetectInput::Bytes(Bytes::new()), JobKind::Detect)
            .await;
        assert!(matches!(empty, Err(DetectError::Empty)));
        let key = ObjectKey::parse("1/original/nothing.jpg").expect("key");
        let missing = detect.submit(DetectInput::Key(key), JobKind::Detect).await;
        assert!(matches!(missing, Err(DetectError::NoSuchKey(_))));
        assert_eq!(
            backends.jobs.stats().await.expect("stats"),
            QueueStats::default(),
            "nothing was queued"
        );
    }

    #[tokio::test]
    async fn waiting_ends_with_the_stored_outcome_or_says_it_still_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let detect = OperatorDetect::new(backends.clone(), 1024);
        let id = detect
            .submit(
                DetectInput::Bytes(Bytes::from_static(&[0xFF, 0xD8, 0xFF])),
                JobKind::Detect,
            )
            .await
            .expect("queued");
        let running = detect.wait(id, Duration::from_millis(250)).await;
        assert!(matches!(running, Err(DetectError::StillRunning(i)) if i == id));
        let summary = PredictionSummary {
            prediction_id: id,
            original_img_path: String::new(),
            predicted_img_path: String::new(),
            full_img_path: None,
            labels: Vec::new(),
            time: 0.0,
            settings: Default::default(),
        };
        let table = backends.table.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            table
                .save_result(&JobResult::Detected(summary))
                .await
                .expect("saved");
        });
        let done = detect.wait(id, Duration::from_secs(5)).await.expect("done");
        assert_eq!(done.status, PredictionStatus::Succeeded);

        let failed = detect
            .submit(
                DetectInput::Bytes(Bytes::from_static(b"text")),
                JobKind::Detect,
            )
            .await
            .expect("queued");
        backends
            .table
            .save_failure(failed, FailureKind::NotAnImage)
            .await
            .expect("saved");
        let record = detect
            .wait(failed, Duration::from_secs(5))
            .await
            .expect("done");
        assert_eq!(record.failure, Some(FailureKind::NotAnImage));
    }
}
