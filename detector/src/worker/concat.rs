//! An album joined into one picture (`concat`), stored under `filtered/`.

use bytes::Bytes;
use polybot_domain::{Direction, FailureKind, Job, JobResult, JoinedSummary, ObjectKey, now_epoch};

use super::job::{Album, Done, Handled, JobStep, Place, engine_answer};

/// Every photo is needed: the album cannot be joined without one.
pub(super) async fn run(
    step: &JobStep,
    job: &Job,
    album: Album<'_>,
    direction: Direction,
) -> Handled {
    let Some(fetched) = album.fetched.into_iter().collect::<Option<Vec<Bytes>>>() else {
        return Ok(Done::Refused(
            FailureKind::Internal,
            "a photo of the album is gone".into(),
        ));
    };
    let photos = fetched.iter().map(|b| b.to_vec()).collect();
    let answer = album.lane.concat(photos, direction).await;
    let out = match engine_answer(answer, Place::Own)? {
        Ok(out) => out,
        Err(refused) => return Ok(refused),
    };
    let key = ObjectKey::filtered(job.chat_id, job.prediction_id, out.extension);
    step.store(&key, out.bytes, out.mime, "joined picture")
        .await?;
    Ok(Done::Made(JobResult::Joined(JoinedSummary {
        prediction_id: job.prediction_id,
        direction,
        original_img_paths: album
            .photos
            .into_iter()
            .map(|p| p.original_key.to_string())
            .collect(),
        output_img_path: key.to_string(),
        mime_type: out.mime.to_owned(),
        width: out.width,
        height: out.height,
        time: now_epoch(),
        skipped: album.skipped.to_vec(),
    })))
}
