//! A caption's filter on one photo: the filtered picture stored, and its
//! summary.

use polybot_domain::{Filter, FilterSummary, Job, JobResult, now_epoch};
use tracing::info;

use super::job::{Done, Handled, JobStep, Photo, engine_answer};

pub(super) async fn run(step: &JobStep, job: &Job, photo: Photo<'_>, filter: Filter) -> Handled {
    let place = photo.place;
    let seed = place.seed(job.prediction_id);
    let answer = photo.lane.filter(photo.bytes.to_vec(), filter, seed).await;
    let out = match engine_answer(answer, place)? {
        Ok(out) => out,
        Err(refused) => return Ok(refused),
    };
    info!(%filter, width = out.width, height = out.height, index = ?place.index(), "filtered");
    let key = place.output_key(job, out.extension);
    let what = place.what("filtered picture");
    step.store(&key, out.bytes, out.mime, what).await?;
    Ok(Done::Made(JobResult::Filtered(FilterSummary {
        prediction_id: job.prediction_id,
        filter,
        original_img_path: photo.original_key.to_string(),
        output_img_path: key.to_string(),
        mime_type: out.mime.to_owned(),
        width: out.width,
        height: out.height,
        time: now_epoch(),
    })))
}
