//! An album joined into one picture (`concat`), stored under `filtered/`.

use bytes::Bytes;
use polybot_domain::{
    AlbumPhotos, Direction, FailureKind, Job, JobResult, JoinedSummary, ObjectKey, now_epoch,
};

use super::job::{Done, JobStep, Place, RetryLater, engine_answer};
use super::ports::Lane;

/// `fetched` holds each photo's bytes, `None` for one that is gone: the
/// album cannot be joined without it.
pub(super) async fn run(
    step: &JobStep,
    job: &Job,
    lane: Lane,
    photos: &AlbumPhotos,
    fetched: Vec<Option<Bytes>>,
    direction: Direction,
) -> Result<Done, RetryLater> {
    let Some(fetched) = fetched.into_iter().collect::<Option<Vec<Bytes>>>() else {
        return Ok(Done::Refused(
            FailureKind::Internal,
            "a photo of the album is gone".into(),
        ));
    };
    let bytes = fetched.iter().map(|b| b.to_vec()).collect();
    let out = match engine_answer(lane.concat(bytes, direction).await, Place::Own)? {
        Ok(out) => out,
        Err(refused) => return Ok(refused),
    };
    let key = ObjectKey::filtered(job.chat_id, job.prediction_id, out.extension);
    step.store(&key, out.bytes, out.mime, "joined picture")
        .await?;
    Ok(Done::Made(JobResult::Joined(JoinedSummary {
        prediction_id: job.prediction_id,
        direction,
        original_img_paths: photos
            .into_iter()
            .map(|p| p.original_key.to_string())
            .collect(),
        output_img_path: key.to_string(),
        mime_type: out.mime.to_owned(),
        width: out.width,
        height: out.height,
        time: now_epoch(),
    })))
}
