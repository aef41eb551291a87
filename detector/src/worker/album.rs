//! An album whose caption asks for one kind on each photo: every photo run
//! as a photo of its own would be ([`photo::run`]), stored under the
//! album's key for it. A photo that cannot be used is named in the answer,
//! and the others are still answered.

use bytes::Bytes;
use polybot_domain::{AlbumItem, AlbumPhotos, AlbumSummary, FailureKind, Job, JobKind, JobResult};

use super::job::{Done, JobStep, Photo, Place, RetryLater};
use super::photo;
use super::ports::Lane;

/// `fetched` holds each photo's bytes, `None` for one that is gone.
pub(super) async fn each(
    step: &JobStep,
    job: &Job,
    lane: Lane,
    photos: &AlbumPhotos,
    fetched: Vec<Option<Bytes>>,
    kind: JobKind,
) -> Result<Done, RetryLater> {
    let mut items = Vec::with_capacity(fetched.len());
    let mut first_lane = Some(lane);
    for (index, (album_photo, bytes)) in photos.into_iter().zip(fetched).enumerate() {
        let Some(bytes) = bytes else {
            items.push(AlbumItem {
                result: None,
                failure: Some(FailureKind::Internal),
            });
            continue;
        };
        let lane = match first_lane.take() {
            Some(lane) => lane,
            None => step.engine.reserve().await.map_err(RetryLater::Engine)?,
        };
        let one = Photo {
            place: Place::AlbumItem(index),
            original_key: &album_photo.original_key,
            bytes,
        };
        items.push(match photo::run(step, job, lane, one, kind).await? {
            Done::Made(result) => AlbumItem {
                result: Some(result),
                failure: None,
            },
            Done::Refused(failure, _) => AlbumItem {
                result: None,
                failure: Some(failure),
            },
        });
    }
    Ok(Done::Made(JobResult::Album(AlbumSummary {
        prediction_id: job.prediction_id,
        items,
    })))
}
