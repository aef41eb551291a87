//! A detection's objects cut out of its photo (the answer's `Crops`
//! button): the detection's record read from the table, its boxes largest
//! first (at most [`CropsSummary::MAX`], a Telegram album's most), cut on
//! the engine at full resolution, each stored as a JPEG under `crops/`.
//!
//! The boxes come from the stored record, not from the job, so a crops job
//! stays small on the queue and always cuts what the user was shown.

use polybot_domain::{
    Crop, CropsSummary, FailureKind, Job, JobResult, Label, ObjectKey, PredictionId,
    PredictionRecord, PredictionStatus, PredictionSummary, now_epoch,
};
use tracing::{Instrument, info};

use super::job::{Done, Handled, JobStep, Place, RetryLater, engine_answer};
use super::patience::{StorageCall, patiently};
use super::ports::Lane;

pub(super) async fn run(
    step: &JobStep,
    job: &Job,
    original_key: &ObjectKey,
    of: PredictionId,
    lane: Lane,
) -> Handled {
    let record = patiently(StorageCall::Read, || step.backends.table.get(of))
        .instrument(tracing::info_span!("read detection", %of))
        .await
        .map_err(RetryLater::Read)?;
    let summary = match detection(record, job) {
        Ok(summary) => summary,
        // Asking again cannot make the detection appear: tell the user.
        Err(why) => return Ok(Done::Refused(FailureKind::Internal, why)),
    };
    let boxes = largest_first(&summary.labels);
    let crops = if boxes.is_empty() {
        // Nothing to cut: neither the photo nor the lane is needed.
        drop(lane);
        Vec::new()
    } else {
        let photo = match step.fetch(original_key).await {
            Ok(bytes) => bytes,
            // The photo is gone and will not come back: tell the user.
            Err(e) => {
                let detail = format!("fetching the photo: {e}");
                return Ok(Done::Refused(FailureKind::Internal, detail));
            }
        };
        let answer = lane.crops(photo.to_vec(), boxes.clone()).await;
        let jpegs = match engine_answer(answer, Place::Own)? {
            Ok(jpegs) => jpegs,
            Err(refused) => return Ok(refused),
        };
        let mut crops = Vec::with_capacity(jpegs.len());
        for (index, (jpeg, label)) in jpegs.into_iter().zip(boxes).enumerate() {
            let key = ObjectKey::crop(job.chat_id, job.prediction_id, index);
            step.store(&key, jpeg, "image/jpeg", "crop").await?;
            crops.push(Crop {
                path: key.to_string(),
                class: label.class,
                confidence: label.confidence,
            });
        }
        crops
    };
    info!(%of, objects = summary.labels.len(), crops = crops.len(), "cropped");
    Ok(Done::Made(JobResult::Cropped(CropsSummary {
        prediction_id: job.prediction_id,
        of,
        crops,
        objects: summary.labels.len(),
        time: now_epoch(),
    })))
}

/// The detection summary a crops job cuts, or why there is none to cut.
fn detection(record: Option<PredictionRecord>, job: &Job) -> Result<PredictionSummary, String> {
    let Some(record) = record else {
        return Err("the detection to cut is not stored".into());
    };
    // The gateway asks only for a chat's own detection; a request that says
    // otherwise must not hand one chat's photo to another.
    if record.chat_id != job.chat_id {
        return Err("the detection to cut belongs to another chat".into());
    }
    match (record.status, record.result) {
        (PredictionStatus::Succeeded, Some(JobResult::Detected(summary))) => Ok(summary),
        (status, _) => Err(format!(
            "the prediction to cut is not a succeeded detection ({status:?}, {})",
            record.kind
        )),
    }
}

/// The boxes to cut: largest area first (the objects a user most likely
/// wants), ties by confidence, at most [`CropsSummary::MAX`].
fn largest_first(labels: &[Label]) -> Vec<Label> {
    let area = |l: &Label| l.width * l.height;
    let mut boxes = labels.to_vec();
    boxes.sort_by(|a, b| {
        area(b)
            .total_cmp(&area(a))
            .then(b.confidence.total_cmp(&a.confidence))
    });
    boxes.truncate(CropsSummary::MAX);
    boxes
}
