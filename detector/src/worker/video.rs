//! A clip (a video, a GIF, a round video): frames sampled from it and
//! detected on one lane (`EngineLane::video`), the key frames stored as
//! annotated JPEGs beside the photos' (`predicted/…-frameN.jpg`), and the
//! summary of each class's peak. While the lane works, how far it has got
//! is reported to Results every few seconds, for the user's notice.

use std::sync::Arc;
use std::time::Duration;

use polybot_domain::{
    ClipKind, FailureKind, Job, JobResult, KeyFrame, ObjectKey, VideoSummary, now_epoch,
};
use tokio::sync::watch;
use tracing::{debug, info};

use super::job::{Done, Handled, JobStep, Place, engine_answer};
use super::ports::{JobProgress, Lane, ResultsSink};

/// How often progress is reported at most: the notice is edited this
/// often (Telegram allows about one edit per second per chat).
pub(super) const PROGRESS_EVERY: Duration = Duration::from_secs(3);

pub(super) async fn run(
    step: &JobStep,
    job: &Job,
    original_key: &ObjectKey,
    clip: ClipKind,
    lane: Lane,
) -> Handled {
    let bytes = match step.fetch(original_key).await {
        Ok(bytes) => bytes,
        // The clip is gone and will not come back: tell the user.
        Err(e) => {
            let detail = format!("fetching the clip: {e}");
            return Ok(Done::Refused(FailureKind::Internal, detail));
        }
    };
    let (tx, rx) = watch::channel((0u32, 0u32));
    let progress = Box::new(move |p: polybot_inference::video::VideoProgress| {
        let done = u32::try_from(p.done).unwrap_or(u32::MAX);
        let total = u32::try_from(p.total).unwrap_or(u32::MAX);
        tx.send_replace((done, total));
    });
    let work = lane.video(bytes.to_vec(), job.settings.clone(), progress);
    let answer = match &step.progress {
        Some(sink) => {
            tokio::pin!(work);
            tokio::select! {
                biased;
                answer = &mut work => answer,
                () = report_progress(Arc::clone(sink), job, rx) => work.await,
            }
        }
        None => work.await,
    };
    let output = match engine_answer(answer, Place::Own)? {
        Ok(output) => output,
        Err(refused) => return Ok(refused),
    };
    let mut key_frames = Vec::with_capacity(output.key_frames.len());
    for (index, frame) in output.key_frames.into_iter().enumerate() {
        let key = ObjectKey::key_frame(job.chat_id, job.prediction_id, index);
        step.store(&key, frame.annotated_jpeg, "image/jpeg", "key frame")
            .await?;
        key_frames.push(KeyFrame {
            path: key.to_string(),
            at_ms: millis(frame.at),
            labels: frame.labels,
        });
    }
    info!(
        %clip,
        codec = %output.codec,
        duration_ms = millis(output.duration),
        sampled = output.sampled,
        key_frames = key_frames.len(),
        decode_ms = millis(output.decode),
        detect_ms = millis(output.detect),
        "clip detected"
    );
    Ok(Done::Made(JobResult::Video(VideoSummary {
        prediction_id: job.prediction_id,
        original_img_path: original_key.to_string(),
        clip,
        key_frames,
        peaks: output.peaks,
        duration_ms: millis(output.duration),
        sampled: u32::try_from(output.sampled).unwrap_or(u32::MAX),
        last_sample_ms: millis(output.last_sample),
        time: now_epoch(),
        settings: job.settings.clone(),
    })))
}

/// Reports the lane's progress at most every [`PROGRESS_EVERY`], from the
/// first [`PROGRESS_EVERY`] on (a quick clip is answered before any notice
/// would show it); never returns while the lane works.
async fn report_progress(
    sink: Arc<dyn ResultsSink>,
    job: &Job,
    mut rx: watch::Receiver<(u32, u32)>,
) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        if rx.changed().await.is_err() {
            // The lane is done: the answer follows.
            return std::future::pending().await;
        }
        let (done, total) = *rx.borrow_and_update();
        if total == 0 || done >= total {
            continue;
        }
        let progress = JobProgress {
            prediction_id: job.prediction_id,
            chat_id: job.chat_id,
            done,
            total,
            language: job.language,
        };
        if let Err(e) = sink.progress(&progress).await {
            debug!(error = %e, "could not report progress");
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    //! A clip's job through the fake engine and the embedded backend.
    use std::sync::Arc;

    use polybot_domain::{
        ChatSettings, ClassChoice, FailureKind, JobResult, ObjectKey, PredictionStatus,
        SettingsChange,
    };
    use polybot_proto::Outcome;

    use crate::worker::testing::{FakeResults, Fixture, SLOW_FRAME, fake_clip};

    #[tokio::test]
    async fn a_clip_is_answered_with_its_key_frames_stored_and_each_class_peak() {
        let f = Fixture::new();
        let clip = fake_clip(&[
            &["person"],
            &["person", "person", "person"],
            &[],
            &["person", "person", "person"],
            &["bus"],
        ]);
        let job = f.clip(&clip, ChatSettings::default()).await;
        let report = f
            .step()
            .run(&job)
            .await
            .expect("done")
            .expect("a report: the prediction is there");
        let Outcome::Success(JobResult::Video(video)) = &report.outcome else {
            panic!("{report:?}");
        };
        assert_eq!(
            video.peaks_text(polybot_domain::Lang::En),
            "person ×3 at 0:01–0:03, bus ×1 at 0:04"
        );
        assert_eq!(video.sampled, 5);
        assert_eq!(video.last_sample_ms, 4_000);
        assert!(!video.key_frames.is_empty() && video.key_frames.len() <= 4);
        for (i, frame) in video.key_frames.iter().enumerate() {
            let key = ObjectKey::key_frame(job.chat_id, job.prediction_id, i);
            assert_eq!(frame.path, key.to_string());
            let stored = f.stored(&frame.path).await;
            assert!(stored.starts_with(b"frame "), "{stored:?}");
        }
        let record = f.record(job.prediction_id).await;
        assert_eq!(record.status, PredictionStatus::Succeeded);
        assert_eq!(
            record.result.as_ref(),
            Some(&JobResult::Video(video.clone()))
        );
    }

    #[tokio::test]
    async fn a_clip_is_detected_with_the_chats_settings() {
        let f = Fixture::new();
        let only_buses = ChatSettings::default().with(SettingsChange::Classes(ClassChoice::from(
            Some(["bus".to_owned()].into_iter().collect()),
        )));
        let job = f
            .clip(
                &fake_clip(&[&["person"], &["bus", "person"]]),
                only_buses.clone(),
            )
            .await;
        let report = f
            .step()
            .run(&job)
            .await
            .expect("done")
            .expect("a report: the prediction is there");
        let Outcome::Success(JobResult::Video(video)) = &report.outcome else {
            panic!("{report:?}");
        };
        assert_eq!(video.peaks_text(polybot_domain::Lang::En), "bus ×1 at 0:01");
        assert_eq!(video.settings, only_buses);
    }

    #[tokio::test]
    async fn a_clip_that_is_no_video_is_told_to_the_user_not_retried() {
        let f = Fixture::new();
        let job = f
            .clip(
                crate::worker::testing::NOT_A_PICTURE,
                ChatSettings::default(),
            )
            .await;
        let report = f
            .step()
            .run(&job)
            .await
            .expect("a report, not a retry")
            .expect("a report: the prediction is there");
        assert!(
            matches!(
                report.outcome,
                Outcome::Failure {
                    kind: FailureKind::UnsupportedVideo,
                    ..
                }
            ),
            "{report:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_clips_progress_is_reported_every_few_seconds() {
        let f = Fixture::new();
        let results = FakeResults::acking();
        let step = f.step().reporting_progress_to(Arc::new(results.clone()));
        let frames: Vec<&[&str]> = vec![&[SLOW_FRAME]; 10];
        let job = f.clip(&fake_clip(&frames), ChatSettings::default()).await;
        step.run(&job).await.expect("done");
        let progress = results.progress();
        // Ten seconds of work, reported every three: at 3, 6 and 9 s.
        assert_eq!(progress.len(), 3, "{progress:?}");
        assert!(progress.iter().all(|p| p.total == 10 && p.done < 10));
        assert!(progress.windows(2).all(|w| w[0].done < w[1].done));
        assert!(
            progress
                .iter()
                .all(|p| p.prediction_id == job.prediction_id)
        );
    }

    #[tokio::test]
    async fn a_quick_clips_progress_is_never_reported() {
        let f = Fixture::new();
        let results = FakeResults::acking();
        let step = f.step().reporting_progress_to(Arc::new(results.clone()));
        let frames: Vec<&[&str]> = vec![&["cat"]; 5];
        let job = f.clip(&fake_clip(&frames), ChatSettings::default()).await;
        step.run(&job).await.expect("done");
        assert!(results.progress().is_empty());
    }
}
