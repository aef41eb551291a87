//! An album whose caption asks for one kind on each photo: every photo run
//! as a photo of its own would be ([`photo::run`]), stored under the
//! album's key for it. A photo that cannot be used is named in the answer,
//! and the others are still answered.

use polybot_domain::{AlbumItem, AlbumSummary, FailureKind, Job, JobKind, JobResult};

use super::job::{Album, Done, Handled, JobStep, Photo, Place, RetryLater};
use super::photo;

pub(super) async fn each(step: &JobStep, job: &Job, album: Album<'_>, kind: JobKind) -> Handled {
    let mut items = Vec::with_capacity(album.fetched.len());
    let mut first_lane = Some(album.lane);
    let skipped = album.skipped.to_vec();
    for (index, (member, bytes)) in album.photos.into_iter().zip(album.fetched).enumerate() {
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
            original_key: &member.original_key,
            bytes,
            lane,
        };
        items.push(match photo::run(step, job, one, kind).await? {
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
        skipped,
    })))
}
