//! Detection of one photo: the annotated picture stored (and, for a photo
//! of its own past Telegram's photo limits, a full-resolution copy too)
//! and the labels.

use polybot_domain::{Job, JobResult};
use tracing::info;

use super::job::{Done, Handled, JobStep, Photo, engine_answer};

pub(super) async fn run(step: &JobStep, job: &Job, photo: Photo<'_>) -> Handled {
    let place = photo.place;
    let answer = photo
        .lane
        .detect_sized(
            photo.bytes.to_vec(),
            place.annotated_size(),
            job.settings.clone(),
        )
        .await;
    let mut out = match engine_answer(answer, place)? {
        Ok(out) => out,
        Err(refused) => return Ok(refused),
    };
    crate::metrics::inference(out.timings.inference.as_secs_f64());
    info!(
        objects = out.detections.len(),
        inference_ms = out.timings.inference.as_secs_f64() * 1e3,
        index = ?place.index(),
        "detected"
    );
    let key = place.annotated_key(job);
    // Taken, not copied: the summary needs only the detections.
    let annotated = std::mem::take(&mut out.annotated_jpeg);
    let what = place.what("annotated photo");
    step.store(&key, annotated, "image/jpeg", what).await?;
    let mut summary = out.summary(
        job.prediction_id,
        photo.original_key.to_string(),
        key.to_string(),
    );
    summary.settings = job.settings.clone();
    if let (Some(full), Some(full_key)) = (out.full_jpeg.take(), place.full_key(job)) {
        // A large file: its full detail goes back too, as a document.
        let what = "full-resolution photo";
        step.store(&full_key, full, "image/jpeg", what).await?;
        summary.full_img_path = Some(full_key.to_string());
    }
    Ok(Done::Made(JobResult::Detected(summary)))
}
