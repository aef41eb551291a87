//! What every job handler shares: the [`JobStep`] (the engine and the
//! storage ports a job runs against), how a handler's work ends
//! ([`Done`], or [`RetryLater`]), where one photo's result goes
//! ([`Place`]), and fetching and storing pictures.

use std::sync::Arc;

use bytes::Bytes;
use polybot_domain::{
    AlbumPhotos, AlbumSkip, FailureKind, Job, JobResult, ObjectKey, PredictionId,
};
use polybot_inference::{AnnotatedSize, DetectError};
use polybot_proto::{Outcome, Report};
use polybot_storage::{Backends, PutMode, Saved, StorageError};
use tracing::{Instrument, info, warn};

use super::config::ProcessingHook;
use super::patience::{StorageCall, patiently};
use super::ports::{JobEngine, Lane, ResultsSink};

/// One job's work up to its report, against an engine and the storage
/// ports: fetch the photos, run the job's kind, store the pictures and the
/// result. The report is sent by the caller.
pub struct JobStep {
    pub(super) engine: Arc<dyn JobEngine>,
    pub(super) backends: Backends,
    /// Told each finished single photo's processing time.
    pub(super) on_processed: Option<ProcessingHook>,
    /// Where a long job's progress is reported (Results).
    pub(super) progress: Option<Arc<dyn ResultsSink>>,
}

impl JobStep {
    pub fn new(
        engine: Arc<dyn JobEngine>,
        backends: Backends,
        on_processed: Option<ProcessingHook>,
    ) -> Self {
        Self {
            engine,
            backends,
            on_processed,
            progress: None,
        }
    }

    /// Reports long jobs' progress to `sink`.
    pub fn reporting_progress_to(mut self, sink: Arc<dyn ResultsSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// A photo of the job; retryable errors are retried in place (see
    /// [`patiently`]), so an error here is permanent: the photo is gone.
    pub(super) async fn fetch(&self, key: &ObjectKey) -> Result<Bytes, StorageError> {
        patiently(StorageCall::Fetch, || self.backends.objects.get(key))
            .instrument(tracing::info_span!("fetch original", %key))
            .await
    }

    /// Every photo of an album; `None` for one that is gone for good.
    pub(super) async fn fetch_all(&self, photos: &AlbumPhotos) -> Vec<Option<Bytes>> {
        let mut fetched = Vec::with_capacity(photos.as_slice().len());
        for photo in photos {
            fetched.push(match self.fetch(&photo.original_key).await {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    warn!(error = %e, key = %photo.original_key, "an album's photo is gone");
                    None
                }
            });
        }
        fetched
    }

    /// Stores a picture the job made (`what` names it in spans and errors).
    pub(super) async fn store(
        &self,
        key: &ObjectKey,
        bytes: Vec<u8>,
        mime: &str,
        what: &'static str,
    ) -> Result<(), RetryLater> {
        let bytes = Bytes::from(bytes);
        patiently(StorageCall::Store, || {
            self.backends
                .objects
                .put(key, bytes.clone(), mime, PutMode::Overwrite)
        })
        .instrument(tracing::info_span!("store image", %key, what))
        .await
        .map_err(|source| RetryLater::Store { what, source })
    }

    /// Stores a job's result (a redelivered job's second save is a no-op)
    /// and makes the report that answers it; `None` when the prediction is
    /// gone (its chat was erased while the job ran): the pictures the job
    /// stored are deleted, and nobody is to be answered.
    pub(super) async fn save_success(
        &self,
        job: &Job,
        result: JobResult,
    ) -> Result<Option<Report>, RetryLater> {
        let saved = patiently(StorageCall::Save, || {
            self.backends.table.save_result(&result)
        })
        .instrument(tracing::info_span!("save summary"))
        .await
        .map_err(RetryLater::Save)?;
        if saved == Saved::Gone {
            self.erase_pictures(job, &result).await;
            return Ok(None);
        }
        Ok(Some(report_for(job, Outcome::Success(result))))
    }

    /// Deletes the pictures a job of an erased chat stored. Best effort:
    /// what is left expires with the bucket's retention.
    async fn erase_pictures(&self, job: &Job, result: &JobResult) {
        let keys = pictures_of(result);
        let erased = patiently(StorageCall::Store, || self.backends.objects.erase(&keys))
            .instrument(tracing::info_span!("erase pictures"))
            .await;
        match erased {
            Ok(pictures) => info!(
                prediction_id = %job.prediction_id,
                pictures,
                "the prediction is gone (its chat was erased): its pictures are deleted and it is not answered"
            ),
            Err(e) => warn!(
                prediction_id = %job.prediction_id,
                error = %e,
                "the prediction is gone (its chat was erased), but its pictures could not be deleted; they expire"
            ),
        }
    }
}

/// The pictures a result names, which its job stored (never the user's
/// originals, which the job only read).
fn pictures_of(result: &JobResult) -> Vec<ObjectKey> {
    let paths: Vec<&str> = match result {
        JobResult::Detected(s) => std::iter::once(s.predicted_img_path.as_str())
            .chain(s.full_img_path.as_deref())
            .collect(),
        JobResult::Filtered(s) => vec![s.output_img_path.as_str()],
        JobResult::Joined(s) => vec![s.output_img_path.as_str()],
        JobResult::Album(s) => {
            return s
                .items
                .iter()
                .filter_map(|item| item.result.as_ref())
                .flat_map(pictures_of)
                .collect();
        }
        JobResult::Video(s) => s.key_frames.iter().map(|f| f.path.as_str()).collect(),
        JobResult::Cropped(s) => s.crops.iter().map(|c| c.path.as_str()).collect(),
    };
    // A path that is no key was never stored under it.
    paths
        .into_iter()
        .filter_map(|path| ObjectKey::parse(path.to_owned()).ok())
        .collect()
}

/// Why a job could not finish this time: the message is left for
/// redelivery (and after N receives, the dead-letter queue). Storage that
/// is down for a while is not a reason: those calls are retried in place;
/// what reaches here is a storage error no retry fixes (a missing bucket,
/// a denied permission), for operators to see in the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum RetryLater {
    #[error("running the job on the engine")]
    Engine(#[source] DetectError),
    #[error("storing the {what}")]
    Store {
        what: &'static str,
        #[source]
        source: StorageError,
    },
    #[error("saving the result")]
    Save(#[source] StorageError),
    #[error("reading the record the job works from")]
    Read(#[source] StorageError),
}

/// How a handler's work ended, short of a transient failure.
pub(super) enum Done {
    /// The result's pictures are stored; the table is next.
    Made(JobResult),
    /// The photo cannot be used (not an image, too small for the filter…):
    /// tell the user, never retry.
    Refused(FailureKind, String),
}

/// The engine's answer for one piece of work: its output, or a refusal to
/// tell the user (the photo's fault), or a transient failure to retry.
pub(super) fn engine_answer<T>(
    answer: Result<T, DetectError>,
    place: Place,
) -> Result<Result<T, Done>, RetryLater> {
    match answer {
        Ok(out) => Ok(Ok(out)),
        Err(e) if e.is_permanent() => {
            info!(error = %e, index = ?place.index(), "the photo cannot be used");
            Ok(Err(Done::Refused(e.failure_kind(), e.to_string())))
        }
        Err(e) => Err(RetryLater::Engine(e)),
    }
}

/// The report that answers `job` with `outcome`.
pub(super) fn report_for(job: &Job, outcome: Outcome) -> Report {
    Report {
        prediction_id: job.prediction_id,
        chat_id: job.chat_id,
        reply_to_message_id: Some(job.message_id),
        outcome,
        language: job.language,
    }
}

/// What a handler gives: how its work ended, or a transient failure.
pub(super) type Handled = Result<Done, RetryLater>;

/// One photo to run a kind on: whose it is, where it came from, its bytes
/// and the lane reserved for it.
pub(super) struct Photo<'a> {
    pub place: Place,
    pub original_key: &'a ObjectKey,
    pub bytes: Bytes,
    pub lane: Lane,
}

/// An album's photos with their bytes (`None` for one gone for good), and
/// the lane reserved for the job.
pub(super) struct Album<'a> {
    pub photos: &'a AlbumPhotos,
    /// The album's items that are not pictures: passed on to the answer.
    pub skipped: &'a [AlbumSkip],
    pub fetched: Vec<Option<Bytes>>,
    pub lane: Lane,
}

/// Whose result a photo's is: a request of its own, or photo `index` (from
/// 0) of an album. It decides the keys, the annotated size and the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Own,
    AlbumItem(usize),
}

impl Place {
    /// The album index, for log lines.
    pub fn index(self) -> Option<usize> {
        match self {
            Self::Own => None,
            Self::AlbumItem(index) => Some(index),
        }
    }

    /// A photo of its own goes back as Telegram takes it (with a
    /// full-resolution copy when it is past the photo limits); an album's
    /// at the bounded size.
    pub fn annotated_size(self) -> AnnotatedSize {
        match self {
            Self::Own => AnnotatedSize::ForTelegram,
            Self::AlbumItem(_) => AnnotatedSize::Bounded,
        }
    }

    /// Where an annotated photo is stored.
    pub fn annotated_key(self, job: &Job) -> ObjectKey {
        match self {
            Self::Own => ObjectKey::predicted(job.chat_id, job.prediction_id),
            Self::AlbumItem(index) => {
                ObjectKey::album_item(job.chat_id, job.prediction_id, index, "jpg")
            }
        }
    }

    /// Where the full-resolution copy is stored, for a photo that has one.
    pub fn full_key(self, job: &Job) -> Option<ObjectKey> {
        match self {
            Self::Own => Some(ObjectKey::predicted_full(job.chat_id, job.prediction_id)),
            Self::AlbumItem(_) => None,
        }
    }

    /// Where a filtered picture in `extension`'s format is stored.
    pub fn output_key(self, job: &Job, extension: &str) -> ObjectKey {
        match self {
            Self::Own => ObjectKey::filtered(job.chat_id, job.prediction_id, extension),
            Self::AlbumItem(index) => {
                ObjectKey::album_item(job.chat_id, job.prediction_id, index, extension)
            }
        }
    }

    /// The salt-and-pepper seed: from the request's id, so every delivery
    /// of one job makes the same picture, and each album photo its own.
    pub fn seed(self, id: PredictionId) -> u64 {
        let seed = id.as_uuid().as_u64_pair().0;
        match self {
            Self::Own => seed,
            Self::AlbumItem(index) => seed ^ index as u64,
        }
    }

    /// The name of a stored picture, for spans and errors.
    pub fn what(self, own: &'static str) -> &'static str {
        match self {
            Self::Own => own,
            Self::AlbumItem(_) => "album picture",
        }
    }
}
