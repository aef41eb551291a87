//! [`EmulatorClient`]: typed access to the control API over HTTP, for tests
//! and `cargo xtask demo`. It works against an in-process emulator and
//! against the `tg-emulator` binary alike.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use crate::model::{
    ApiFault, BotDescriptions, ButtonPress, CallbackAnswer, ChatActionRecord, ChatInfo, ChatSetup,
    CommandList, DeliveryAttempt, FileInfo, PressedQuery, QueuedUpdate, RateLimitRule,
    RequestStats, SentMessage, StickerKind, UserMessageOptions, VideoMeta, WebhookFault,
    WebhookState,
};

/// Errors of [`EmulatorClient`] calls.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The emulator could not be reached or its answer not read.
    #[error("emulator request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The emulator answered with an error status.
    #[error("emulator answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body (the control API's `{"ok":false,"error":...}`).
        body: String,
    },
    /// A `wait_for_*` helper gave up.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// Result of [`EmulatorClient`] calls.
pub type ClientResult<T> = Result<T, ClientError>;

/// How often the `wait_for_*` helpers poll.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Client for the emulator's control API (`/control/...`).
#[derive(Debug, Clone)]
pub struct EmulatorClient {
    base_url: String,
    http: reqwest::Client,
}

impl EmulatorClient {
    /// A client for the emulator at `base_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(base_url: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            // The emulator is local: never send control calls through a proxy
            // taken from the environment.
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// Base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn read<T: DeserializeOwned>(response: reqwest::Response) -> ClientResult<T> {
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(response.json().await?)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        Self::read(self.http.get(self.url(path)).send().await?).await
    }

    async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> ClientResult<T> {
        Self::read(self.http.post(self.url(path)).json(body).send().await?).await
    }

    async fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &UserMessageOptions,
        bytes: Vec<u8>,
    ) -> ClientResult<T> {
        let no_extra: [(&str, &str); 0] = [];
        self.post_media(path, query, &no_extra, bytes).await
    }

    /// Posts bytes with the message options and `extra` (what the kind of
    /// media needs: sizes, duration, sticker format) in the query string.
    async fn post_media<T: DeserializeOwned, E: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &UserMessageOptions,
        extra: &E,
        bytes: Vec<u8>,
    ) -> ClientResult<T> {
        let request = self
            .http
            .post(self.url(path))
            .query(query)
            .query(extra)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        Self::read(request.send().await?).await
    }

    /// `GET /control/health`: succeeds once the emulator serves requests.
    pub async fn health(&self) -> ClientResult<()> {
        self.get::<serde_json::Value>("/control/health")
            .await
            .map(drop)
    }

    /// Polls [`health`](Self::health) until it succeeds (e.g. after spawning the binary).
    pub async fn wait_until_ready(&self, timeout: Duration) -> ClientResult<()> {
        let start = tokio::time::Instant::now();
        loop {
            if self.health().await.is_ok() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::Timeout {
                    what: "the emulator to answer /control/health".into(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `POST /control/reset`: forget all state.
    pub async fn reset(&self) -> ClientResult<()> {
        self.post_json::<_, serde_json::Value>("/control/reset", &json!({}))
            .await
            .map(drop)
    }

    /// `POST /control/files`: store bytes as a file the bot can fetch with
    /// `getFile` (width/height are filled in for images).
    pub async fn register_file(
        &self,
        bytes: impl Into<Vec<u8>>,
        file_name: Option<&str>,
    ) -> ClientResult<FileInfo> {
        let options = UserMessageOptions {
            file_name: file_name.map(str::to_owned),
            ..Default::default()
        };
        self.post_bytes("/control/files", &options, bytes.into())
            .await
    }

    /// `GET /control/files/{file_id}`: raw bytes of any stored file, e.g. a
    /// photo or video the bot sent (`message.file.file_id`), without the
    /// 20 MB limit of getFile.
    pub async fn file_bytes(&self, file_id: &str) -> ClientResult<Vec<u8>> {
        let response = self
            .http
            .get(self.url(&format!("/control/files/{file_id}")))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: response.text().await.unwrap_or_default(),
            });
        }
        Ok(response.bytes().await?.to_vec())
    }

    /// A user sends a photo: the emulator builds the PhotoSize ladder and
    /// queues a `message` update.
    pub async fn send_user_photo(
        &self,
        chat_id: i64,
        image: impl Into<Vec<u8>>,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        self.post_bytes(
            &format!("/control/chats/{chat_id}/photo"),
            options,
            image.into(),
        )
        .await
    }

    /// A user sends a file as a document (`file_name`/`mime_type` in `options`).
    pub async fn send_user_document(
        &self,
        chat_id: i64,
        bytes: impl Into<Vec<u8>>,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        self.post_bytes(
            &format!("/control/chats/{chat_id}/document"),
            options,
            bytes.into(),
        )
        .await
    }

    /// A user sends a video (`POST /control/chats/{chat_id}/video`): a
    /// `video` message with `meta`'s size and duration (the emulator does
    /// not parse video). `options` may give a caption, `file_name`
    /// (default `video.mp4`), `mime_type` (default `video/mp4`) and a
    /// `media_group_id`. Files over 20 MB are accepted; getFile refuses them
    /// as Telegram does.
    pub async fn send_user_video(
        &self,
        chat_id: i64,
        bytes: impl Into<Vec<u8>>,
        meta: &VideoMeta,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        let path = format!("/control/chats/{chat_id}/video");
        self.post_media(&path, options, meta, bytes.into()).await
    }

    /// A user sends a GIF (`POST /control/chats/{chat_id}/animation`),
    /// which Telegram delivers as an MP4 `animation` that is also the
    /// message's `document`. `options` may give a caption, `file_name`
    /// (default `animation.gif.mp4`) and `mime_type`; not a `media_group_id`.
    pub async fn send_user_animation(
        &self,
        chat_id: i64,
        bytes: impl Into<Vec<u8>>,
        meta: &VideoMeta,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        let path = format!("/control/chats/{chat_id}/animation");
        self.post_media(&path, options, meta, bytes.into()).await
    }

    /// A user records a round video (`POST /control/chats/{chat_id}/video_note`)
    /// `length` pixels across lasting `duration` seconds. Video notes have
    /// no caption and are never in albums: `options` giving one is refused.
    pub async fn send_user_video_note(
        &self,
        chat_id: i64,
        bytes: impl Into<Vec<u8>>,
        length: u32,
        duration: u32,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        let path = format!("/control/chats/{chat_id}/video_note");
        let extra = [("length", length), ("duration", duration)];
        self.post_media(&path, options, &extra, bytes.into()).await
    }

    /// A user sends a regular sticker (`POST /control/chats/{chat_id}/sticker`)
    /// of the given format, with emoji 👍; a static one's size is read from
    /// the WebP, others are 512×512. No caption, no album.
    pub async fn send_user_sticker(
        &self,
        chat_id: i64,
        bytes: impl Into<Vec<u8>>,
        kind: StickerKind,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        let path = format!("/control/chats/{chat_id}/sticker");
        let extra = [("sticker", kind)];
        self.post_media(&path, options, &extra, bytes.into()).await
    }

    /// A user sends a text message (`/commands` and `@mentions` get their
    /// entities, as Telegram marks them).
    pub async fn send_user_text(&self, chat_id: i64, text: &str) -> ClientResult<QueuedUpdate> {
        self.send_user_text_with(chat_id, text, &UserMessageOptions::default())
            .await
    }

    /// A user sends a text message with options: sender (`from_id`, names),
    /// `reply_to_message_id`. `caption`, `file_name` and `mime_type` do not
    /// apply to texts and are ignored.
    pub async fn send_user_text_with(
        &self,
        chat_id: i64,
        text: &str,
        options: &UserMessageOptions,
    ) -> ClientResult<QueuedUpdate> {
        let request = self
            .http
            .post(self.url(&format!("/control/chats/{chat_id}/text")))
            .query(options)
            .json(&json!({ "text": text }));
        Self::read(request.send().await?).await
    }

    /// `POST /control/chats/{chat_id}`: creates or replaces a chat (type,
    /// title, members). Later user messages in it carry its `Chat` object and
    /// are sent by its first member unless `from_id` names another.
    pub async fn create_chat(&self, chat: &ChatSetup) -> ClientResult<ChatInfo> {
        self.post_json(&format!("/control/chats/{}", chat.chat_id), chat)
            .await
    }

    /// `GET /control/chats/{chat_id}`: the chat's `Chat` object and members
    /// (404 for a chat neither created nor used by a user message).
    pub async fn chat(&self, chat_id: i64) -> ClientResult<ChatInfo> {
        self.get(&format!("/control/chats/{chat_id}")).await
    }

    /// `GET /control/commands`: every command list the bot set, per scope
    /// and language.
    pub async fn commands(&self) -> ClientResult<Vec<CommandList>> {
        self.get("/control/commands").await
    }

    /// `GET /control/descriptions`: the description and short description
    /// the bot set, per language ("" for the default).
    pub async fn descriptions(&self) -> ClientResult<Vec<BotDescriptions>> {
        self.get("/control/descriptions").await
    }

    /// `POST /control/updates`: queue a raw Update JSON as given.
    pub async fn queue_update(&self, update: &serde_json::Value) -> ClientResult<QueuedUpdate> {
        self.post_json("/control/updates", update).await
    }

    /// `POST /control/redeliver/{update_id}`: deliver an update again.
    pub async fn redeliver(&self, update_id: i64) -> ClientResult<QueuedUpdate> {
        self.post_json(&format!("/control/redeliver/{update_id}"), &json!({}))
            .await
    }

    /// Everything the bot sent to `chat_id`, in order.
    pub async fn messages(&self, chat_id: i64) -> ClientResult<Vec<SentMessage>> {
        self.get(&format!("/control/chats/{chat_id}/messages"))
            .await
    }

    /// The albums the bot sent to `chat_id` (`sendMediaGroup` with 2 or more
    /// items), in order, each with its messages in order. Messages outside
    /// any album are left out.
    pub async fn media_groups(&self, chat_id: i64) -> ClientResult<Vec<Vec<SentMessage>>> {
        let mut groups: Vec<Vec<SentMessage>> = Vec::new();
        for message in self.messages(chat_id).await? {
            let Some(id) = message.media_group_id.clone() else {
                continue;
            };
            match groups
                .iter_mut()
                .find(|g| g[0].media_group_id.as_deref() == Some(id.as_str()))
            {
                Some(group) => group.push(message),
                None => groups.push(vec![message]),
            }
        }
        Ok(groups)
    }

    /// Polls until the bot has sent at least `n` messages to `chat_id`.
    pub async fn wait_for_messages(
        &self,
        chat_id: i64,
        n: usize,
        timeout: Duration,
    ) -> ClientResult<Vec<SentMessage>> {
        let start = tokio::time::Instant::now();
        loop {
            let messages = self.messages(chat_id).await?;
            if messages.len() >= n {
                return Ok(messages);
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::Timeout {
                    what: format!(
                        "{n} message(s) in chat {chat_id} (got {}: {:?})",
                        messages.len(),
                        messages
                            .iter()
                            .map(|m| m.text.as_ref().or(m.caption.as_ref()))
                            .collect::<Vec<_>>()
                    ),
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// A user presses the inline button whose `callback_data` is `data` on
    /// the bot's message `message_id`: queues a `callback_query` update.
    /// `from_id` defaults to the chat's usual sender (as for user messages).
    pub async fn press(
        &self,
        chat_id: i64,
        message_id: i64,
        from_id: Option<i64>,
        data: &str,
    ) -> ClientResult<PressedQuery> {
        let press = ButtonPress {
            from_id,
            data: Some(data.to_owned()),
            text: None,
        };
        self.press_with(chat_id, message_id, &press).await
    }

    /// A user presses the first inline button labelled `text` on the bot's
    /// message `message_id` (it must be a callback button).
    pub async fn press_text(
        &self,
        chat_id: i64,
        message_id: i64,
        from_id: Option<i64>,
        text: &str,
    ) -> ClientResult<PressedQuery> {
        let press = ButtonPress {
            from_id,
            data: None,
            text: Some(text.to_owned()),
        };
        self.press_with(chat_id, message_id, &press).await
    }

    /// `POST /control/chats/{chat_id}/messages/{message_id}/press`.
    pub async fn press_with(
        &self,
        chat_id: i64,
        message_id: i64,
        press: &ButtonPress,
    ) -> ClientResult<PressedQuery> {
        self.post_json(
            &format!("/control/chats/{chat_id}/messages/{message_id}/press"),
            press,
        )
        .await
    }

    /// Every button press (all chats, or only `chat_id`'s), in order, with
    /// the bot's `answerCallbackQuery` answer if it gave one.
    pub async fn callback_answers(
        &self,
        chat_id: Option<i64>,
    ) -> ClientResult<Vec<CallbackAnswer>> {
        match chat_id {
            Some(id) => {
                self.get(&format!("/control/callback_answers?chat_id={id}"))
                    .await
            }
            None => self.get("/control/callback_answers").await,
        }
    }

    /// Polls until the bot has answered the press `callback_query_id`.
    pub async fn wait_callback_answer(
        &self,
        callback_query_id: &str,
        timeout: Duration,
    ) -> ClientResult<CallbackAnswer> {
        let answers = self
            .wait_for_callback_answers(timeout, |answers| {
                answers
                    .iter()
                    .any(|a| a.callback_query_id == callback_query_id && a.answered)
            })
            .await?;
        answers
            .into_iter()
            .find(|a| a.callback_query_id == callback_query_id)
            .ok_or_else(|| ClientError::Timeout {
                what: format!("an answer to callback query {callback_query_id}"),
                waited: timeout,
            })
    }

    /// Polls until `predicate` holds for the presses and answers of all chats.
    pub async fn wait_for_callback_answers(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[CallbackAnswer]) -> bool,
    ) -> ClientResult<Vec<CallbackAnswer>> {
        let start = tokio::time::Instant::now();
        loop {
            let answers = self.callback_answers(None).await?;
            if predicate(&answers) {
                return Ok(answers);
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::Timeout {
                    what: format!("callback query answers (got {answers:?})"),
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// `sendChatAction` calls for `chat_id`, in order.
    pub async fn chat_actions(&self, chat_id: i64) -> ClientResult<Vec<ChatActionRecord>> {
        self.get(&format!("/control/chats/{chat_id}/actions")).await
    }

    /// Makes the bot's sends to `chat_id` fail with 403 (or succeed again).
    pub async fn set_blocked(&self, chat_id: i64, blocked: bool) -> ClientResult<()> {
        self.post_json::<_, serde_json::Value>(
            &format!("/control/chats/{chat_id}/blocked"),
            &json!({ "blocked": blocked }),
        )
        .await
        .map(drop)
    }

    /// Turns Telegram's privacy mode on or off in one group (it is on by
    /// default, see [`crate::EmulatorConfig::group_privacy`]).
    pub async fn set_group_privacy(&self, chat_id: i64, enabled: bool) -> ClientResult<()> {
        self.post_json::<_, serde_json::Value>(
            &format!("/control/chats/{chat_id}/privacy"),
            &json!({ "enabled": enabled }),
        )
        .await
        .map(drop)
    }

    /// Turns privacy mode on or off in every group without a setting of
    /// its own.
    pub async fn set_default_group_privacy(&self, enabled: bool) -> ClientResult<()> {
        self.post_json::<_, serde_json::Value>("/control/privacy", &json!({ "enabled": enabled }))
            .await
            .map(drop)
    }

    /// The ids of the user messages in `chat_id` that privacy mode kept
    /// from the bot, in order.
    pub async fn undelivered(&self, chat_id: i64) -> ClientResult<Vec<i64>> {
        self.get(&format!("/control/chats/{chat_id}/undelivered"))
            .await
    }

    /// Every webhook delivery attempt so far.
    pub async fn deliveries(&self) -> ClientResult<Vec<DeliveryAttempt>> {
        self.get("/control/deliveries").await
    }

    /// Waits until the webhook took `update_id` (answered 2xx).
    pub async fn wait_delivered(
        &self,
        update_id: i64,
        timeout: Duration,
    ) -> ClientResult<Vec<DeliveryAttempt>> {
        self.wait_for_deliveries(timeout, |d| {
            d.iter().any(|a| a.update_id == update_id && a.delivered)
        })
        .await
    }

    /// Polls until `predicate` holds for the delivery attempts.
    pub async fn wait_for_deliveries(
        &self,
        timeout: Duration,
        predicate: impl Fn(&[DeliveryAttempt]) -> bool,
    ) -> ClientResult<Vec<DeliveryAttempt>> {
        let start = tokio::time::Instant::now();
        loop {
            let deliveries = self.deliveries().await?;
            if predicate(&deliveries) {
                return Ok(deliveries);
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::Timeout {
                    what: format!("webhook deliveries (got {deliveries:?})"),
                    waited: timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The next `count` calls of `method` (any method when `None`) answer 429
    /// with `retry_after` seconds.
    pub async fn rate_limit(
        &self,
        method: Option<&str>,
        count: u32,
        retry_after: u32,
    ) -> ClientResult<()> {
        let rule = RateLimitRule {
            method: method.map(str::to_owned),
            count,
            retry_after,
        };
        self.post_json::<_, serde_json::Value>("/control/rate_limit", &rule)
            .await
            .map(drop)
    }

    /// Removes every pending rate-limit rule.
    pub async fn clear_rate_limits(&self) -> ClientResult<()> {
        let response = self
            .http
            .delete(self.url("/control/rate_limit"))
            .send()
            .await?;
        Self::read::<serde_json::Value>(response).await.map(drop)
    }

    /// Scripts the next calls of a method: an error (`error_code`, with
    /// `retry_after` for a 429) and/or a delay (`delay_ms`).
    pub async fn fault(&self, rule: &ApiFault) -> ClientResult<()> {
        self.post_json::<_, serde_json::Value>("/control/faults", rule)
            .await
            .map(drop)
    }

    /// The next `count` calls of `method` answer `error_code` (e.g. 500, 400).
    pub async fn fail_next(&self, method: &str, count: u32, error_code: u16) -> ClientResult<()> {
        self.fault(&ApiFault {
            method: Some(method.to_owned()),
            count,
            error_code: Some(error_code),
            description: None,
            retry_after: None,
            delay_ms: None,
        })
        .await
    }

    /// The next `count` calls of `method` answer normally, after `delay`.
    pub async fn delay_next(
        &self,
        method: &str,
        count: u32,
        delay: std::time::Duration,
    ) -> ClientResult<()> {
        self.fault(&ApiFault {
            method: Some(method.to_owned()),
            count,
            error_code: None,
            description: None,
            retry_after: None,
            delay_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
        })
        .await
    }

    /// Removes every scripted fault.
    pub async fn clear_faults(&self) -> ClientResult<()> {
        let response = self.http.delete(self.url("/control/faults")).send().await?;
        Self::read::<serde_json::Value>(response).await.map(drop)
    }

    /// The next `count` webhook deliveries hang up `after` the update was
    /// sent, before the bot answers (each is retried later).
    pub async fn hang_up_webhook(&self, count: u32, after: Duration) -> ClientResult<()> {
        let rule = WebhookFault {
            count,
            hang_up_after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        };
        self.post_json::<_, serde_json::Value>("/control/webhook_faults", &rule)
            .await
            .map(drop)
    }

    /// Bot API call counters and log.
    pub async fn requests(&self) -> ClientResult<RequestStats> {
        self.get("/control/requests").await
    }

    /// Webhook as the bot configured it (secret included) and the queue length.
    pub async fn webhook(&self) -> ClientResult<WebhookState> {
        self.get("/control/webhook").await
    }
}
