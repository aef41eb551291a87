//! What the user is sent for each kind of job result, one function per
//! [`JobResult`] kind: a detection (the counts and the annotated photo with
//! its `Details`, `Crops` and `Original` buttons, or the counts alone, as
//! the chat chose), a filter's picture, an album joined into one picture,
//! an album of results, and a detection's crops. Each falls back as
//! Telegram's refusals call for (a photo it refuses goes as a document,
//! then as text), so the user always gets one answer.
//!
//! Only the formatting and sending live here; claiming the reply, its
//! lease, retries, the progress notice and failures are the reply
//! protocol's business (`replies.rs`).

use std::sync::Arc;

use polybot_domain::{
    AlbumSkip, AlbumSummary, AnswerButton, AnswerExtra, ChatId, CropsSummary, FailureKind, Filter,
    FilterSummary, JobResult, JoinedSummary, Lang, ObjectKey, OutputMode, PredictionSummary,
    VideoSummary, t, worked_positions,
};
use polybot_storage::{ObjectStore, StorageError};
use tracing::{info, warn};

use crate::messenger::{
    Button, Document, Keyboard, MediaItem, Messenger, MessengerError, SentMessage,
};

/// The answer to `Crops` for a detection that found nothing.
pub fn no_crops(lang: Lang) -> String {
    t!(lang, "crops-none")
}

/// The buttons under a detection's answer: its details and crops, and the
/// full-resolution copy when there is one. Each carries the prediction's
/// opaque id only.
pub fn extras_keyboard(summary: &PredictionSummary, lang: Lang) -> Keyboard {
    let button = |extra: AnswerExtra| Button {
        text: extra.label(lang),
        data: AnswerButton {
            extra,
            prediction: summary.prediction_id,
        }
        .encode(),
    };
    let mut row = vec![button(AnswerExtra::Details)];
    if !summary.labels.is_empty() {
        row.push(button(AnswerExtra::Crops));
    }
    if summary.full_img_path.is_some() {
        row.push(button(AnswerExtra::Original));
    }
    Keyboard(vec![row])
}

/// The longest details text: Telegram's 4,096 characters, with room to
/// spare for how it counts them.
pub(crate) const DETAILS_MAX_CHARS: usize = 4000;

/// The caption of the full-resolution copy of a large photo.
pub fn full_resolution_caption(lang: Lang) -> String {
    t!(lang, "full-resolution-caption")
}

/// One photo's line of an album's answer: "2: person ×1".
fn line(number: u32, text: &str, lang: Lang) -> String {
    t!(lang, "album-line", number = number, text = text)
}

/// Where an answer goes: the chat, quoting the user's request, in the
/// user's language.
#[derive(Debug, Clone, Copy)]
pub struct Recipient {
    pub chat: ChatId,
    pub reply_to: Option<i64>,
    pub lang: Lang,
}

/// What answering a result came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The answer went out; when it is one picture made from one photo,
    /// the message that shows it and that photo, so that a reply to the
    /// answer can be applied to the photo.
    Sent(Option<ShownPhoto>),
    /// Nothing could be shown (no photo of an album could be used): the
    /// failure to tell instead, which is told like any other failure.
    Nothing(FailureKind),
}

/// The bot's message that shows a result made from one original photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownPhoto {
    pub message_id: i64,
    /// The user's photo the result was made from.
    pub original: ObjectKey,
    /// The answer's picture as Telegram holds it, when it went as a photo:
    /// `/history` sends it again by this.
    pub file_id: Option<String>,
}

impl ShownPhoto {
    /// The message `sent` (if Telegram named it) showing a result made
    /// from the stored photo `original_path`.
    fn of(sent: Option<SentMessage>, original_path: &str) -> Option<Self> {
        let original = ObjectKey::parse(original_path.to_owned()).ok()?;
        sent.map(|sent| Self {
            message_id: sent.id,
            original,
            file_id: sent.photo,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The stored picture could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Messenger(#[from] MessengerError),
}

/// Sends job results' answers. Cheap to clone.
#[derive(Clone)]
pub struct Answers {
    messenger: Arc<dyn Messenger>,
    /// Where the detector stored the pictures the results name.
    objects: Arc<dyn ObjectStore>,
}

impl Answers {
    pub fn new(messenger: Arc<dyn Messenger>, objects: Arc<dyn ObjectStore>) -> Self {
        Self { messenger, objects }
    }

    /// A job's result, by its kind.
    pub async fn send(&self, to: Recipient, result: &JobResult) -> Result<Answered, AnswerError> {
        match result {
            JobResult::Detected(summary) => {
                info!(objects = summary.labels.len(), "replying with detections");
                let sent = self.detection(to, summary).await?;
                Ok(Answered::Sent(ShownPhoto::of(
                    sent,
                    &summary.original_img_path,
                )))
            }
            JobResult::Filtered(output) => {
                info!(filter = %output.filter, width = output.width, height = output.height,
                    "replying with the filtered picture");
                let sent = self.filtered(to, output).await?;
                Ok(Answered::Sent(ShownPhoto::of(
                    sent,
                    &output.original_img_path,
                )))
            }
            JobResult::Joined(output) => {
                info!(
                    photos = output.original_img_paths.len(),
                    width = output.width,
                    height = output.height,
                    "replying with the joined album"
                );
                // A reply to a joined album has no one photo to go back to.
                self.joined(to, output).await.map(|_| Answered::Sent(None))
            }
            JobResult::Album(album) => {
                info!(photos = album.items.len(), "replying to an album");
                self.album(to, album).await
            }
            JobResult::Video(video) => {
                info!(
                    key_frames = video.key_frames.len(),
                    sampled = video.sampled,
                    peaks = video.peaks.len(),
                    "replying with a clip's key frames"
                );
                // A reply to a clip's answer has no photo to go back to.
                self.video(to, video).await.map(|()| Answered::Sent(None))
            }
            JobResult::Cropped(crops) => {
                info!(crops = crops.crops.len(), "replying with the crops");
                // A reply to the crops has no one photo to go back to.
                self.crops(to, crops).await.map(|()| Answered::Sent(None))
            }
        }
    }

    /// An album joined into one picture: one photo quoting the album.
    async fn joined(
        &self,
        to: Recipient,
        output: &JoinedSummary,
    ) -> Result<Option<SentMessage>, AnswerError> {
        let picture = self.stored_image(&output.output_img_path).await?;
        let caption = with_skipped(
            vec![(
                0,
                polybot_domain::Action::Concat(output.direction).to_string(),
            )],
            &output.skipped,
            to.lang,
        );
        match self
            .messenger
            .send_photo(to.chat, picture.clone(), &caption, to.reply_to, None)
            .await
        {
            Ok(sent) => Ok(sent),
            Err(MessengerError::MediaRejected(reason)) => {
                warn!(%reason, "Telegram refused the joined photo; sending it as a document");
                let document = Document {
                    bytes: picture,
                    file_name: "concat.jpg",
                    mime: "image/jpeg",
                    caption,
                };
                let text = FailureKind::TooLarge.user_message(to.lang);
                self.document_or_text(to, document, &text).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An album's results as one album (`sendMediaGroup`), a line per
    /// photo in the caption of the first ("1: person ×2"); a photo that
    /// could not be used is named in its line, and so is an item that is
    /// not a picture ("3: a video, skipped"). One result goes as a single
    /// photo (an album needs two), none as the failure.
    async fn album(&self, to: Recipient, album: &AlbumSummary) -> Result<Answered, AnswerError> {
        let mut items = Vec::new();
        let mut lines = Vec::new();
        let mut first_failure = None;
        let numbers = worked_positions(&album.skipped, album.items.len());
        for (number, item) in numbers.into_iter().zip(&album.items) {
            match (&item.result, item.failure) {
                (Some(JobResult::Detected(summary)), _) => {
                    let counts = summary.counts_text(to.lang);
                    lines.push((number, line(number, &counts, to.lang)));
                    items.push(MediaItem {
                        bytes: self.stored_image(&summary.predicted_img_path).await?,
                        file_name: "detections.jpg",
                        mime: "image/jpeg",
                        document: false,
                        caption: None,
                    });
                }
                (Some(JobResult::Filtered(output)), _) => {
                    let done = output.filter.answer_caption(to.lang);
                    lines.push((number, line(number, &done, to.lang)));
                    let png = output.mime_type == "image/png";
                    items.push(MediaItem {
                        bytes: self.stored_image(&output.output_img_path).await?,
                        file_name: if png { "filtered.png" } else { "filtered.jpg" },
                        mime: if png { "image/png" } else { "image/jpeg" },
                        // Exact black and white, as for one photo.
                        document: png && matches!(output.filter, Filter::Segment { .. }),
                        caption: None,
                    });
                }
                (_, failure) => {
                    let kind = failure.unwrap_or(FailureKind::Internal);
                    first_failure.get_or_insert(kind);
                    let why = kind.short_message(to.lang);
                    lines.push((number, line(number, &why, to.lang)));
                }
            }
        }
        let caption = with_skipped(lines, &album.skipped, to.lang);
        // The chat asked for the counts alone: the caption is the answer.
        let counts_only = album.items.iter().any(|item| {
            matches!(&item.result, Some(JobResult::Detected(s)) if s.settings.output == OutputMode::Counts)
        });
        if counts_only {
            self.messenger
                .send_text(to.chat, &caption, to.reply_to)
                .await?;
            return Ok(Answered::Sent(None));
        }
        let (sent, what) = match items.len() {
            0 => {
                let kind = first_failure.unwrap_or(FailureKind::Internal);
                return Ok(Answered::Nothing(kind));
            }
            1 => {
                let item = items.remove(0);
                let sent = if item.document {
                    let document = Document {
                        bytes: item.bytes,
                        file_name: item.file_name,
                        mime: item.mime,
                        caption: caption.clone(),
                    };
                    self.messenger
                        .send_document(to.chat, document, to.reply_to)
                        .await
                        .map(drop)
                } else {
                    self.messenger
                        .send_photo(to.chat, item.bytes, &caption, to.reply_to, None)
                        .await
                        .map(drop)
                };
                (sent, "picture")
            }
            _ => {
                // Telegram wants an album all photos or all documents.
                if items.iter().any(|i| i.document) {
                    for item in &mut items {
                        item.document = true;
                    }
                }
                let sent = self
                    .messenger
                    .send_media_group(to.chat, items, &caption, to.reply_to)
                    .await;
                (sent, "album")
            }
        };
        match sent {
            Err(MessengerError::MediaRejected(reason)) => {
                warn!(%reason, "Telegram refused the {what}; answering with its caption");
                self.messenger
                    .send_text(to.chat, &caption, to.reply_to)
                    .await?;
            }
            other => other?,
        }
        // An album's answer is not traced back to its photos: a reply to
        // it is chatter (see `intake/rework.rs`).
        Ok(Answered::Sent(None))
    }

    /// A filter's picture, quoting the request, captioned with what was
    /// done ("blur 16", "rotated 90° clockwise"). A PNG whose every pixel
    /// matters (segment: only black and white) goes as a document, since
    /// Telegram re-compresses photos to JPEG; the rest go as photos, and as
    /// a document if Telegram refuses the photo.
    async fn filtered(
        &self,
        to: Recipient,
        output: &FilterSummary,
    ) -> Result<Option<SentMessage>, AnswerError> {
        let chat = to.chat;
        let picture = self.stored_image(&output.output_img_path).await?;
        let caption = output.filter.answer_caption(to.lang);
        let png = output.mime_type == "image/png";
        let exact = png && matches!(output.filter, Filter::Segment { .. });
        if !exact {
            match self
                .messenger
                .send_photo(chat, picture.clone(), &caption, to.reply_to, None)
                .await
            {
                Ok(sent) => return Ok(sent),
                Err(MessengerError::MediaRejected(reason)) => {
                    warn!(%reason, "Telegram refused the filtered photo; sending it as a document");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let document = Document {
            bytes: picture,
            file_name: if png { "filtered.png" } else { "filtered.jpg" },
            mime: if png { "image/png" } else { "image/jpeg" },
            caption,
        };
        let text = FailureKind::TooLarge.user_message(to.lang);
        self.document_or_text(to, document, &text).await
    }

    /// A picture as a document; if Telegram refuses that too, `text`
    /// instead, so the user still gets one answer. The document's message
    /// id when it went (a text answer shows no picture to reply to).
    async fn document_or_text(
        &self,
        to: Recipient,
        document: Document,
        text: &str,
    ) -> Result<Option<SentMessage>, AnswerError> {
        match self
            .messenger
            .send_document(to.chat, document, to.reply_to)
            .await
        {
            Ok(sent) => Ok(sent.map(|id| SentMessage { id, photo: None })),
            Err(MessengerError::MediaRejected(reason)) => {
                warn!(%reason, "Telegram refused the document too; answering with text");
                self.messenger
                    .send_text(to.chat, text, to.reply_to)
                    .await
                    .map(|()| None)
                    .map_err(Into::into)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The counts and the annotated photo. A photo Telegram refuses for
    /// what it is (dimensions past its limits, say) goes as a document
    /// instead, and if that is refused too, the counts go as text: the user
    /// always gets the answer, once.
    async fn detection(
        &self,
        to: Recipient,
        summary: &PredictionSummary,
    ) -> Result<Option<SentMessage>, AnswerError> {
        let chat = to.chat;
        let caption = summary.counts_text(to.lang);
        let keyboard = extras_keyboard(summary, to.lang);
        if summary.settings.output == OutputMode::Counts {
            // The chat asked for the counts alone: one text, no picture.
            self.messenger
                .send_keyboard(chat, &caption, keyboard, to.reply_to)
                .await?;
            return Ok(None);
        }
        let annotated = self.stored_image(&summary.predicted_img_path).await?;
        let refused = match self
            .messenger
            .send_photo(
                chat,
                annotated.clone(),
                &caption,
                to.reply_to,
                Some(keyboard),
            )
            .await
        {
            Ok(sent) => {
                // The full-resolution copy of a large file waits behind
                // the answer's Original button.
                self.details(to, summary).await;
                return Ok(sent);
            }
            Err(MessengerError::MediaRejected(reason)) => reason,
            Err(e) => return Err(e.into()),
        };
        warn!(%refused, "Telegram refused the annotated photo; sending it as a document");
        let document = Document {
            bytes: annotated,
            file_name: "detections.jpg",
            mime: "image/jpeg",
            caption: caption.clone(),
        };
        // The counts are the answer even without the picture.
        self.document_or_text(to, document, &caption).await
    }

    /// Below the photo, for a chat that asked for details: each object
    /// with its score and box. Best effort, as the full-resolution copy.
    async fn details(&self, to: Recipient, summary: &PredictionSummary) {
        if summary.settings.output != OutputMode::Details {
            return;
        }
        let text = summary.details_text(DETAILS_MAX_CHARS, to.lang);
        if let Err(e) = self.messenger.send_text(to.chat, &text, to.reply_to).await {
            warn!(error = %e, "could not send the details");
        }
    }

    /// A detection's objects cut out: one picture each (an album of up to
    /// ten, captioned with class and score), quoting the answer.
    async fn crops(&self, to: Recipient, crops: &CropsSummary) -> Result<(), AnswerError> {
        let more = (crops.objects > crops.crops.len()).then(|| {
            t!(
                to.lang,
                "crops-largest",
                shown = crops.crops.len(),
                count = crops.objects,
            )
        });
        let mut items = Vec::new();
        for (i, crop) in crops.crops.iter().enumerate() {
            let mut caption = format!("{} {:.2}", to.lang.class_name(&crop.class), crop.confidence);
            if i == 0
                && let Some(more) = &more
            {
                caption.push_str(more);
            }
            items.push(MediaItem {
                bytes: self.stored_image(&crop.path).await?,
                file_name: "crop.jpg",
                mime: "image/jpeg",
                document: false,
                caption: Some(caption),
            });
        }
        match items.len() {
            0 => {
                self.messenger
                    .send_text(to.chat, &no_crops(to.lang), to.reply_to)
                    .await?
            }
            1 => {
                let item = items.remove(0);
                let caption = item.caption.unwrap_or_default();
                self.messenger
                    .send_photo(to.chat, item.bytes, &caption, to.reply_to, None)
                    .await?;
            }
            _ => {
                self.messenger
                    .send_media_group(to.chat, items, "", to.reply_to)
                    .await?
            }
        }
        Ok(())
    }

    /// A clip's answer: its key frames as one album (one as a photo), each
    /// captioned with its time and counts, the first also with each
    /// class's peak; a chat that wants counts only gets the peaks as text.
    async fn video(&self, to: Recipient, video: &VideoSummary) -> Result<(), AnswerError> {
        let peaks = video.peaks_text(to.lang);
        if video.settings.output == OutputMode::Counts {
            return Ok(self
                .messenger
                .send_text(to.chat, &peaks, to.reply_to)
                .await?);
        }
        let mut items = Vec::new();
        for (i, frame) in video.key_frames.iter().enumerate() {
            let caption = if i == 0 {
                format!("{peaks}\n\n{}", frame.caption(to.lang))
            } else {
                frame.caption(to.lang)
            };
            items.push(MediaItem {
                bytes: self.stored_image(&frame.path).await?,
                file_name: "frame.jpg",
                mime: "image/jpeg",
                document: false,
                caption: Some(caption),
            });
        }
        if items.len() > 1 {
            self.messenger
                .send_media_group(to.chat, items, "", to.reply_to)
                .await?;
        } else if let Some(item) = items.pop() {
            let caption = item.caption.unwrap_or_default();
            self.messenger
                .send_photo(to.chat, item.bytes, &caption, to.reply_to, None)
                .await?;
        } else {
            self.messenger
                .send_text(to.chat, &peaks, to.reply_to)
                .await?;
        }
        Ok(())
    }

    /// An image the detector stored, by the key a summary names.
    async fn stored_image(&self, path: &str) -> Result<bytes::Bytes, AnswerError> {
        let key = ObjectKey::parse(path.to_owned())
            .map_err(|e| StorageError::invalid_from("a stored path", e))?;
        Ok(self.objects.get(&key).await?)
    }
}

/// A caption from numbered lines and the album's skipped items, a line
/// each, in the album's order (the line without a place last).
fn with_skipped(mut lines: Vec<(u32, String)>, skipped: &[AlbumSkip], lang: Lang) -> String {
    lines.extend(skipped.iter().map(|s| match s.position {
        0 => (u32::MAX, s.line(lang)),
        place => (place, s.line(lang)),
    }));
    lines.sort_by_key(|(place, _)| *place);
    let lines: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use polybot_domain::{AlbumItem, ChatSettings, Crop, Label, PredictionId, SettingsChange};
    use polybot_storage::PutMode;

    use super::*;
    use crate::fake::{FakeMessenger, local_backends};

    const TO: Recipient = Recipient {
        chat: ChatId(5),
        reply_to: Some(7),
        lang: Lang::En,
    };

    /// Answers through a fake messenger, with every picture a result can
    /// name stored.
    async fn answers(dir: &std::path::Path) -> (Answers, Arc<FakeMessenger>) {
        let backends = local_backends(dir).await;
        for key in ["5/predicted/a.jpg", "5/predicted/b.jpg"]
            .into_iter()
            .map(String::from)
            .chain((0..3).map(|i| format!("5/crops/c-{i}.jpg")))
        {
            let key = ObjectKey::parse(key).expect("key");
            backends
                .objects
                .put(&key, "jpeg".into(), "image/jpeg", PutMode::Overwrite)
                .await
                .expect("put");
        }
        let messenger = FakeMessenger::new();
        (Answers::new(messenger.clone(), backends.objects), messenger)
    }

    fn detection(path: &str, output: OutputMode) -> PredictionSummary {
        PredictionSummary {
            prediction_id: PredictionId::new(),
            original_img_path: "5/original/a.jpg".into(),
            predicted_img_path: path.into(),
            full_img_path: None,
            labels: vec![Label {
                class: "bus".into(),
                cx: 0.5,
                cy: 0.5,
                width: 0.5,
                height: 0.5,
                confidence: 0.9,
            }],
            time: 1.0,
            settings: ChatSettings::default().with(SettingsChange::Output(output)),
        }
    }

    #[tokio::test]
    async fn a_detection_goes_as_the_chat_chose_with_its_buttons() {
        let dir = tempfile::tempdir().expect("dir");
        let (answers, messenger) = answers(dir.path()).await;
        for output in OutputMode::ALL {
            let result = JobResult::Detected(detection("5/predicted/a.jpg", output));
            answers.send(TO, &result).await.expect("sent");
        }
        assert_eq!(
            messenger.sent(),
            [
                "photo: bus ×1 [Details|Crops]",
                "photo: bus ×1 [Details|Crops]",
                "text: 1 object, surest first:\n1. bus 0.90 \u{2014} x 25\u{2013}75%, y 25\u{2013}75%",
                "keyboard: bus ×1 [Details|Crops]",
            ]
        );
    }

    #[tokio::test]
    async fn an_album_of_a_chat_that_wants_counts_is_one_text() {
        let dir = tempfile::tempdir().expect("dir");
        let (answers, messenger) = answers(dir.path()).await;
        let item = |path| AlbumItem {
            result: Some(JobResult::Detected(detection(path, OutputMode::Counts))),
            failure: None,
        };
        let album = JobResult::Album(AlbumSummary {
            prediction_id: PredictionId::new(),
            items: vec![item("5/predicted/a.jpg"), item("5/predicted/b.jpg")],
            skipped: Vec::new(),
        });
        answers.send(TO, &album).await.expect("sent");
        assert_eq!(messenger.sent(), ["text: 1: bus ×1\n2: bus ×1"]);
    }

    #[tokio::test]
    async fn crops_go_as_one_album_and_say_how_many_were_left_out() {
        let dir = tempfile::tempdir().expect("dir");
        let (answers, messenger) = answers(dir.path()).await;
        let crops = |n: usize, objects| {
            JobResult::Cropped(CropsSummary {
                prediction_id: PredictionId::new(),
                of: PredictionId::new(),
                crops: (0..n)
                    .map(|i| Crop {
                        path: format!("5/crops/c-{i}.jpg"),
                        class: "person".into(),
                        confidence: 0.8,
                    })
                    .collect(),
                objects,
                time: 1.0,
            })
        };
        answers.send(TO, &crops(3, 14)).await.expect("sent");
        answers.send(TO, &crops(1, 1)).await.expect("sent");
        answers.send(TO, &crops(0, 0)).await.expect("sent");
        assert_eq!(
            messenger.sent(),
            [
                "album of 3: [person 0.80 \u{2014} the 3 largest of 14 objects|person 0.80|person 0.80]"
                    .to_owned(),
                "photo: person 0.80".to_owned(),
                format!("text: {}", no_crops(Lang::En)),
            ]
        );
    }

    #[tokio::test]
    async fn a_clip_goes_as_its_key_frames_with_each_class_peak_and_when() {
        let dir = tempfile::tempdir().expect("dir");
        let (answers, messenger) = answers(dir.path()).await;
        let label = |class: &str| Label {
            class: class.into(),
            cx: 0.5,
            cy: 0.5,
            width: 0.2,
            height: 0.2,
            confidence: 0.9,
        };
        let video = |frames: &[(&str, u64, Vec<Label>)], output| {
            JobResult::Video(VideoSummary {
                prediction_id: PredictionId::new(),
                original_img_path: "5/original/v.mp4".into(),
                clip: polybot_domain::ClipKind::Video,
                key_frames: frames
                    .iter()
                    .map(|(path, at_ms, labels)| polybot_domain::KeyFrame {
                        path: (*path).into(),
                        at_ms: *at_ms,
                        labels: labels.clone(),
                    })
                    .collect(),
                peaks: polybot_domain::video::peaks(
                    &frames
                        .iter()
                        .map(|(_, at_ms, labels)| polybot_domain::SampledFrame {
                            at: std::time::Duration::from_millis(*at_ms),
                            labels: labels.clone(),
                        })
                        .collect::<Vec<_>>(),
                ),
                duration_ms: 9_000,
                sampled: 9,
                last_sample_ms: 8_000,
                time: 1.0,
                settings: ChatSettings::default().with(SettingsChange::Output(output)),
            })
        };
        let people = vec![label("person"), label("person")];
        let frames = [
            ("5/predicted/a.jpg", 2_000, people.clone()),
            (
                "5/predicted/b.jpg",
                7_000,
                vec![label("bus"), label("person")],
            ),
        ];
        answers
            .send(TO, &video(&frames, OutputMode::Photo))
            .await
            .expect("sent");
        answers
            .send(TO, &video(&frames, OutputMode::Counts))
            .await
            .expect("sent");
        answers
            .send(TO, &video(&frames[..1], OutputMode::Photo))
            .await
            .expect("sent");
        assert_eq!(
            messenger.sent(),
            [
                "album of 2: [person ×2 at 0:02, bus ×1 at 0:07\n\n0:02: person ×2|0:07: bus ×1, person ×1]",
                "text: person ×2 at 0:02, bus ×1 at 0:07",
                "photo: person ×2 at 0:02\n\n0:02: person ×2",
            ]
        );
    }

    #[test]
    fn skipped_items_are_named_in_the_albums_order_and_the_unseen_line_last() {
        let skipped = [
            AlbumSkip {
                position: 0,
                what: polybot_domain::ONLY_CAPTIONED_USED.into(),
            },
            AlbumSkip {
                position: 2,
                what: "a video".into(),
            },
        ];
        let numbers = worked_positions(&skipped, 2);
        let lines = numbers
            .into_iter()
            .map(|n| (n, format!("{n}: person ×1")))
            .collect();
        assert_eq!(
            with_skipped(lines, &skipped, Lang::En),
            format!(
                "1: person ×1\n2: a video, skipped\n3: person ×1\n{}",
                crate::intake::only_captioned_used(Lang::En)
            )
        );
        assert_eq!(
            with_skipped(vec![(0, "concat".into())], &[], Lang::En),
            "concat"
        );
    }
}
