//! The emulator's memory: update queue, files, chats, webhook, counters.
//!
//! One `Mutex` guards everything because every operation is short and
//! in-memory; nothing awaits while holding it. Changes that someone may be
//! waiting for (a new update for a long poll or the webhook worker, a new
//! webhook URL) bump a `watch` counter instead of using per-waiter channels.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    EmulatorConfig,
    model::{
        ApiFault, BotCommand, BotCommandScope, CallbackAnswer, ChatActionRecord, DeliveryAttempt,
        FileInfo, Member, RateLimitRule, RequestLogEntry, RequestStats, SentMessage, StickerKind,
        WebhookFault, WebhookState,
    },
};

/// Bounded history sizes, so a long demo run does not grow without limit.
const MAX_LOG: usize = 10_000;

pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub bot_id: i64,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    pub cancel: CancellationToken,
    started: Instant,
    /// Client for webhook delivery and for fetching `sendPhoto` URLs.
    pub http: reqwest::Client,
}

impl Shared {
    pub fn new(config: EmulatorConfig, cancel: CancellationToken) -> anyhow::Result<Self> {
        let bot_id = config
            .token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(123_456);
        let http = webhook_client(config.webhook_timeout, None)?;
        let (changed, _) = watch::channel(0);
        Ok(Self {
            config,
            bot_id,
            state: Mutex::new(State::default()),
            changed,
            cancel,
            started: Instant::now(),
            http,
        })
    }

    /// The client that delivers to `webhook`: one that also trusts its
    /// uploaded certificate, when it has one.
    pub fn client_for(&self, webhook: &Webhook) -> reqwest::Result<reqwest::Client> {
        match &webhook.certificate {
            None => Ok(self.http.clone()),
            Some(pem) => webhook_client(self.config.webhook_timeout, Some(pem)),
        }
    }

    /// Locks the state. A panic elsewhere while locked leaves data that is
    /// still consistent enough for a test double, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes long polls and the webhook worker.
    pub fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that has seen the current version: call while holding the
    /// lock, after checking the state, so no later change is missed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn bot_user(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": self.config.bot_first_name,
            "username": self.config.bot_username,
        })
    }
}

/// A scripted fault (`/control/rate_limit`, `/control/faults`,
/// `/control/webhook_faults`): it applies to the next `count` calls of its
/// method, or of every method.
pub(crate) trait Rule: Clone {
    /// How many more calls it applies to.
    fn count_mut(&mut self) -> &mut u32;

    /// The method it is limited to (case-insensitive); `None` for every one.
    fn method(&self) -> Option<&str> {
        None
    }

    fn used_up(&mut self) -> bool {
        *self.count_mut() == 0
    }
}

/// Rules limited to one method (or every one when it is not given).
macro_rules! method_rule {
    ($($rule:ty),+) => {$(
        impl Rule for $rule {
            fn count_mut(&mut self) -> &mut u32 {
                &mut self.count
            }

            fn method(&self) -> Option<&str> {
                self.method.as_deref()
            }
        }
    )+};
}

method_rule!(RateLimitRule, ApiFault);

impl Rule for WebhookFault {
    fn count_mut(&mut self) -> &mut u32 {
        &mut self.count
    }
}

/// Consumes one use of the first rule in `rules` for a call of `method`,
/// and forgets the rules used up: the rule as it was used.
fn take_rule<R: Rule>(rules: &mut Vec<R>, method: &str) -> Option<R> {
    let i = rules
        .iter_mut()
        .position(|r| !r.used_up() && r.method().is_none_or(|m| m.eq_ignore_ascii_case(method)))?;
    let rule = &mut rules[i];
    *rule.count_mut() -= 1;
    let taken = rule.clone();
    rules.retain_mut(|r| !r.used_up());
    Some(taken)
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An update waiting for getUpdates or the webhook.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Identity of this queue entry (update_ids may repeat on purpose).
    pub seq: u64,
    pub update_id: i64,
    pub body: Value,
    /// Queued out of order (redelivery, crafted duplicate): getUpdates'
    /// `offset` must not drop it before it has been returned once, otherwise
    /// a duplicate could never reach a polling bot.
    pub forced: bool,
    /// Webhook delivery: a POST of this entry is under way.
    pub in_flight: bool,
    /// Webhook delivery: attempts so far.
    pub attempts: u32,
    /// Webhook delivery: not before this instant (backoff after a failure).
    pub retry_at: Option<tokio::time::Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Webhook {
    pub url: String,
    pub secret_token: Option<String>,
    pub allowed_updates: Option<Vec<String>>,
    pub max_connections: Option<u32>,
    /// The PEM uploaded as `certificate`: deliveries trust it, as Telegram
    /// trusts a self-signed certificate only when it was uploaded.
    pub certificate: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub info: FileInfo,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Photo,
    Document,
    Thumbnail,
    Video,
    Animation,
    VideoNote,
    Sticker,
}

#[derive(Debug, Default)]
pub(crate) struct ChatState {
    pub chat: Option<Value>,
    last_message_id: i64,
    /// Every message in the chat (user's and bot's), for reply lookups.
    pub messages: BTreeMap<i64, Value>,
    /// What the bot sent, in order.
    pub sent: Vec<SentMessage>,
    pub actions: Vec<ChatActionRecord>,
    pub blocked: bool,
    /// Set by `POST /control/chats/{chat_id}`: `chat` was given, not guessed.
    pub created: bool,
    /// Members given at creation; the first one is the default sender.
    pub members: Vec<Member>,
    /// Privacy mode for this group, when set (`/control/chats/{id}/privacy`);
    /// otherwise the emulator's default.
    pub privacy: Option<bool>,
    /// User messages privacy mode kept from the bot, by message id.
    pub undelivered: Vec<i64>,
}

impl ChatState {
    pub fn next_message_id(&mut self) -> i64 {
        self.last_message_id += 1;
        self.last_message_id
    }

    /// Keeps generated ids above ids used by crafted updates, so a reply
    /// lookup never finds the wrong message.
    pub fn observe_message_id(&mut self, message_id: i64) {
        self.last_message_id = self.last_message_id.max(message_id);
    }

    /// Whether the bot was the last bot to post here (it is the only one).
    pub fn bot_posted(&self) -> bool {
        !self.sent.is_empty()
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    last_update_id: i64,
    entry_seq: u64,
    pub pending: VecDeque<Pending>,
    /// Last body queued for each update_id, for `/control/redeliver`.
    pub history: HashMap<i64, Value>,
    /// Incremented by each getUpdates so an older long poll can be told it
    /// was superseded, as the real API does.
    pub poll_generation: u64,
    pub webhook: Option<Webhook>,
    pub last_error: Option<(i64, String)>,
    files: HashMap<String, StoredFile>,
    paths: HashMap<String, String>,
    file_seq: u64,
    media_group_seq: u64,
    pub chats: HashMap<i64, ChatState>,
    pub deliveries: Vec<DeliveryAttempt>,
    pub rate_limits: Vec<RateLimitRule>,
    pub faults: Vec<ApiFault>,
    pub webhook_faults: Vec<WebhookFault>,
    pub stats: RequestStats,
    /// `setMyCommands` lists per (scope, language_code); empty lists are
    /// not kept, as Telegram treats setting one like deleting.
    pub commands: BTreeMap<(BotCommandScope, String), Vec<BotCommand>>,
    /// `setMyDescription` texts per language_code ("" for the default);
    /// an empty text is not kept, as setting one removes the language's.
    pub descriptions: BTreeMap<String, String>,
    /// `setMyShortDescription` texts, kept like `descriptions`.
    pub short_descriptions: BTreeMap<String, String>,
    /// Privacy mode in groups without a setting of their own, when changed
    /// through `/control/privacy`; otherwise [`EmulatorConfig::group_privacy`].
    pub privacy_default: Option<bool>,
    /// Every button press (`callback_query`), in order, with its answer.
    pub callback_queries: Vec<CallbackAnswer>,
    callback_query_seq: u64,
}

impl State {
    /// Queues an update; assigns the next `update_id` when the body has none.
    pub fn queue_update(&mut self, mut body: Value) -> (i64, Value) {
        let given = body.get("update_id").and_then(Value::as_i64);
        let update_id = given.unwrap_or(self.last_update_id + 1);
        if given.is_none() {
            body["update_id"] = json!(update_id);
        }
        let forced = update_id <= self.last_update_id;
        self.last_update_id = self.last_update_id.max(update_id);
        self.push_pending(update_id, body.clone(), forced);
        (update_id, body)
    }

    /// Queues an already-known update again (duplicate delivery).
    pub fn requeue(&mut self, update_id: i64) -> Option<Value> {
        let body = self.history.get(&update_id)?.clone();
        self.push_pending(update_id, body.clone(), true);
        Some(body)
    }

    fn push_pending(&mut self, update_id: i64, body: Value, forced: bool) {
        self.entry_seq += 1;
        self.history.insert(update_id, body.clone());
        self.pending.push_back(Pending {
            seq: self.entry_seq,
            update_id,
            body,
            forced,
            in_flight: false,
            attempts: 0,
            retry_at: None,
        });
    }

    pub fn chat_mut(&mut self, chat_id: i64) -> &mut ChatState {
        self.chats.entry(chat_id).or_default()
    }

    /// The chat object for `chat_id`: the one a user message established,
    /// or a plausible default (private for positive ids, groups otherwise).
    pub fn chat_json(&self, chat_id: i64) -> Value {
        self.chats
            .get(&chat_id)
            .and_then(|c| c.chat.clone())
            .unwrap_or_else(|| default_chat(chat_id, None))
    }

    /// Stores a photo's size ladder (from [`crate::media::photo_sizes`],
    /// smallest first): the thumbnails as JPEG, the original with `mime`.
    pub(crate) fn store_photo_sizes(
        &mut self,
        sizes: Vec<crate::media::SizedImage>,
        mime: Option<String>,
    ) -> Vec<FileInfo> {
        let last = sizes.len().saturating_sub(1);
        sizes
            .into_iter()
            .enumerate()
            .map(|(i, size)| {
                let mime = if i == last {
                    mime.clone()
                } else {
                    Some("image/jpeg".to_owned())
                };
                self.store_file(
                    size.bytes,
                    FileKind::Photo,
                    None,
                    mime,
                    Some((size.width, size.height)),
                )
                .info
            })
            .collect()
    }

    pub fn store_file(
        &mut self,
        bytes: Bytes,
        kind: FileKind,
        file_name: Option<String>,
        mime_type: Option<String>,
        dims: Option<(u32, u32)>,
    ) -> StoredFile {
        self.store_media(bytes, kind, file_name, mime_type, dims, None)
    }

    /// [`store_file`](Self::store_file) for a file that plays: a video,
    /// animation or video note with its `duration` in seconds.
    pub fn store_media(
        &mut self,
        bytes: Bytes,
        kind: FileKind,
        file_name: Option<String>,
        mime_type: Option<String>,
        dims: Option<(u32, u32)>,
        duration: Option<u32>,
    ) -> StoredFile {
        self.file_seq += 1;
        let n = self.file_seq;
        // Prefixes mimic real file_ids (AgAC photo, BQAC document, AAMC
        // thumb, BAAC video, CgAC animation, DQAC video note, CAAC sticker)
        // so logs look familiar; the rest only has to be unique.
        let (prefix, dir, default_ext) = match kind {
            FileKind::Photo => ("AgACAgIAAxkBAAEmu", "photos", "jpg"),
            FileKind::Document => ("BQACAgIAAxkBAAEmu", "documents", "bin"),
            FileKind::Thumbnail => ("AAMCAgIAAxkBAAEmu", "thumbnails", "jpg"),
            FileKind::Video => ("BAACAgIAAxkBAAEmu", "videos", "mp4"),
            FileKind::Animation => ("CgACAgIAAxkBAAEmu", "animations", "mp4"),
            FileKind::VideoNote => ("DQACAgIAAxkBAAEmu", "video_notes", "mp4"),
            FileKind::Sticker => ("CAACAgIAAxkBAAEmu", "stickers", "webp"),
        };
        let ext = match kind {
            FileKind::Photo | FileKind::Thumbnail => default_ext.to_owned(),
            _ => file_name
                .as_deref()
                .and_then(|n| n.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()))
                .filter(|e| {
                    !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric())
                })
                .or_else(|| mime_extension(mime_type.as_deref()).map(str::to_owned))
                .unwrap_or_else(|| default_ext.to_owned()),
        };
        let file_id = format!("{prefix}{n:08}");
        let file_path = format!("{dir}/file_{n}.{ext}");
        let info = FileInfo {
            file_unique_id: format!("AQADemu{n:06}"),
            file_path: file_path.clone(),
            file_size: bytes.len() as u64,
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
            duration,
            mime_type,
            file_name,
            download_path: format!("/control/files/{file_id}"),
            file_id: file_id.clone(),
        };
        let stored = StoredFile { info, bytes };
        self.paths.insert(file_path, file_id.clone());
        self.files.insert(file_id, stored.clone());
        stored
    }

    /// A new `callback_query.id`: a decimal string like Telegram's 64-bit
    /// ids, which bots must treat as opaque.
    pub fn next_callback_query_id(&mut self) -> String {
        self.callback_query_seq += 1;
        (4_725_000_000_000_000_000 + self.callback_query_seq).to_string()
    }

    /// A new `media_group_id`: a decimal string like Telegram's 64-bit ids.
    pub fn next_media_group_id(&mut self) -> String {
        self.media_group_seq += 1;
        (13_600_000_000_000_000 + self.media_group_seq).to_string()
    }

    pub fn file(&self, file_id: &str) -> Option<&StoredFile> {
        self.files.get(file_id)
    }

    pub fn file_by_path(&self, path: &str) -> Option<&StoredFile> {
        self.paths.get(path).and_then(|id| self.files.get(id))
    }

    /// Consumes one 429 from the first matching rule, if any.
    pub fn take_rate_limit(&mut self, method: &str) -> Option<u32> {
        take_rule(&mut self.rate_limits, method).map(|rule| rule.retry_after)
    }

    /// Consumes one scripted fault from the first matching rule, if any.
    pub fn take_fault(&mut self, method: &str) -> Option<ApiFault> {
        take_rule(&mut self.faults, method)
    }

    /// Consumes one webhook fault, if any: the hang-up delay.
    pub fn take_webhook_fault(&mut self) -> Option<u64> {
        // Webhook faults are not per method: any name matches.
        take_rule(&mut self.webhook_faults, "").map(|rule| rule.hang_up_after_ms)
    }

    pub fn record_request(&mut self, method: &str, status: u16, at_ms: u64) {
        *self.stats.total.entry(method.to_owned()).or_default() += 1;
        if status == 429 {
            *self
                .stats
                .rate_limited
                .entry(method.to_owned())
                .or_default() += 1;
        }
        let seq = self.stats.log.last().map_or(1, |e| e.seq + 1);
        self.stats.log.push(RequestLogEntry {
            seq,
            method: method.to_owned(),
            status,
            at_ms,
        });
        if self.stats.log.len() > MAX_LOG {
            self.stats.log.remove(0);
        }
    }

    pub fn record_delivery(&mut self, attempt: DeliveryAttempt) {
        if !attempt.delivered {
            let message = match (attempt.status, &attempt.error) {
                (Some(status), _) => format!(
                    "Wrong response from the webhook: {status} {}",
                    axum::http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                )
                .trim_end()
                .to_owned(),
                (None, Some(error)) => error.clone(),
                (None, None) => "Unknown error".to_owned(),
            };
            self.last_error = Some((unix_now(), message));
        }
        self.deliveries.push(attempt);
        if self.deliveries.len() > MAX_LOG {
            self.deliveries.remove(0);
        }
    }

    pub fn webhook_state(&self) -> WebhookState {
        let wh = self.webhook.as_ref();
        WebhookState {
            url: wh.map(|w| w.url.clone()),
            secret_token: wh.and_then(|w| w.secret_token.clone()),
            allowed_updates: wh.and_then(|w| w.allowed_updates.clone()),
            max_connections: wh.and_then(|w| w.max_connections),
            certificate: wh.and_then(|w| w.certificate.clone()),
            pending_update_count: self.pending.len(),
            last_error_message: self.last_error.as_ref().map(|e| e.1.clone()),
            last_error_date: self.last_error.as_ref().map(|e| e.0),
        }
    }
}

/// A client for webhook deliveries; `certificate` (PEM) is trusted besides
/// the public authorities.
fn webhook_client(
    timeout: std::time::Duration,
    certificate: Option<&str>,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        // Webhook targets are local test servers: never route them via a
        // proxy from the environment.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    if let Some(pem) = certificate {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
    }
    builder.build()
}

/// A Telegram `User` for a simulated person.
pub(crate) fn user_json(
    id: i64,
    first_name: Option<&str>,
    username: Option<&str>,
    language_code: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "is_bot": false,
        "first_name": first_name.unwrap_or("Test"),
        "username": username.map_or_else(|| format!("test_user_{}", id.unsigned_abs()), str::to_owned),
        "language_code": language_code.unwrap_or("en"),
    })
}

/// A Telegram `Chat`: private for positive ids (named after the user when
/// known), supergroup for `-100…` ids, group for other negative ids.
pub(crate) fn default_chat(chat_id: i64, user: Option<&Value>) -> Value {
    if chat_id > 0 {
        let mut chat = json!({ "id": chat_id, "type": "private" });
        let first_name = user
            .and_then(|u| u.get("first_name"))
            .cloned()
            .unwrap_or_else(|| json!("Test"));
        chat["first_name"] = first_name;
        if let Some(username) = user.and_then(|u| u.get("username")) {
            chat["username"] = username.clone();
        }
        chat
    } else if chat_id <= -1_000_000_000_000 {
        json!({ "id": chat_id, "type": "supergroup", "title": format!("Test supergroup {chat_id}") })
    } else {
        json!({ "id": chat_id, "type": "group", "title": format!("Test group {chat_id}") })
    }
}

/// `PhotoSize` JSON for a stored file.
pub(crate) fn photo_size_json(info: &FileInfo) -> Value {
    json!({
        "file_id": info.file_id,
        "file_unique_id": info.file_unique_id,
        "file_size": info.file_size,
        "width": info.width.unwrap_or(0),
        "height": info.height.unwrap_or(0),
    })
}

/// `Document` JSON for a stored file.
pub(crate) fn document_json(info: &FileInfo, thumbnail: Option<&FileInfo>) -> Value {
    let mut doc = json!({
        "file_id": info.file_id,
        "file_unique_id": info.file_unique_id,
        "file_size": info.file_size,
    });
    if let Some(name) = &info.file_name {
        doc["file_name"] = json!(name);
    }
    if let Some(mime) = &info.mime_type {
        doc["mime_type"] = json!(mime);
    }
    if let Some(thumb) = thumbnail {
        // Bot API 6.6 renamed `thumb` to `thumbnail`; send both like the
        // real API did during the transition.
        doc["thumbnail"] = photo_size_json(thumb);
        doc["thumb"] = photo_size_json(thumb);
    }
    doc
}

/// The extension of the media MIME types whose files carry no name
/// (stickers, video notes).
fn mime_extension(mime: Option<&str>) -> Option<&'static str> {
    match mime? {
        "image/webp" => Some("webp"),
        "application/x-tgsticker" => Some("tgs"),
        "video/webm" => Some("webm"),
        "video/mp4" => Some("mp4"),
        "video/quicktime" => Some("mov"),
        _ => None,
    }
}

/// `Video` or `Animation` JSON for a stored file (the two have the same
/// fields). Sizes and duration the emulator was not told are 0.
pub(crate) fn video_json(info: &FileInfo) -> Value {
    let mut video = json!({
        "file_id": info.file_id,
        "file_unique_id": info.file_unique_id,
        "width": info.width.unwrap_or(0),
        "height": info.height.unwrap_or(0),
        "duration": info.duration.unwrap_or(0),
        "file_size": info.file_size,
    });
    if let Some(name) = &info.file_name {
        video["file_name"] = json!(name);
    }
    if let Some(mime) = &info.mime_type {
        video["mime_type"] = json!(mime);
    }
    video
}

/// `VideoNote` JSON for a stored file: a round video has a diameter
/// (`length`, its stored width) and no width, height, name or MIME type.
pub(crate) fn video_note_json(info: &FileInfo) -> Value {
    json!({
        "file_id": info.file_id,
        "file_unique_id": info.file_unique_id,
        "length": info.width.unwrap_or(0),
        "duration": info.duration.unwrap_or(0),
        "file_size": info.file_size,
    })
}

/// `Sticker` JSON for a stored file of a regular sticker.
pub(crate) fn sticker_json(info: &FileInfo, kind: StickerKind, emoji: Option<&str>) -> Value {
    let mut sticker = json!({
        "file_id": info.file_id,
        "file_unique_id": info.file_unique_id,
        "type": "regular",
        "width": info.width.unwrap_or(0),
        "height": info.height.unwrap_or(0),
        "is_animated": kind == StickerKind::Animated,
        "is_video": kind == StickerKind::Video,
        "file_size": info.file_size,
    });
    if let Some(emoji) = emoji {
        sticker["emoji"] = json!(emoji);
    }
    sticker
}

/// `callback_query.chat_instance`: Telegram's opaque id of a chat as seen
/// by one bot, the same for every press in the chat. A fixed mix of both
/// ids (SplitMix64's finaliser) gives a stable, unrelated-looking number.
pub(crate) fn chat_instance(bot_id: i64, chat_id: i64) -> String {
    let mut z = (bot_id as u64).rotate_left(32) ^ (chat_id as u64);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z as i64).to_string()
}

/// A copy of a message fit for a `reply_to_message` field (Telegram does not
/// nest replies further).
pub(crate) fn reply_copy(message: &Value) -> Value {
    let mut copy = message.clone();
    if let Some(obj) = copy.as_object_mut() {
        obj.remove("reply_to_message");
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_update_ids_are_forced_and_ids_keep_increasing() {
        let mut state = State::default();
        let (a, _) = state.queue_update(json!({"message": {}}));
        let (b, _) = state.queue_update(json!({"update_id": a, "message": {}}));
        let (c, _) = state.queue_update(json!({"message": {}}));
        assert_eq!((a, b, c), (1, 1, 2));
        let forced: Vec<bool> = state.pending.iter().map(|p| p.forced).collect();
        assert_eq!(forced, vec![false, true, false]);
    }

    #[test]
    fn chat_instance_is_stable_per_chat_and_differs_between_chats() {
        assert_eq!(chat_instance(123_456, 42), chat_instance(123_456, 42));
        assert_ne!(chat_instance(123_456, 42), chat_instance(123_456, 43));
        assert_ne!(chat_instance(123_456, 42), chat_instance(654_321, 42));
        assert!(chat_instance(123_456, -100).parse::<i64>().is_ok());
    }

    #[test]
    fn rate_limit_rules_match_case_insensitively_and_run_out() {
        let mut state = State::default();
        state.rate_limits.push(RateLimitRule {
            method: Some("sendmessage".into()),
            count: 2,
            retry_after: 3,
        });
        assert_eq!(state.take_rate_limit("getMe"), None);
        assert_eq!(state.take_rate_limit("sendMessage"), Some(3));
        assert_eq!(state.take_rate_limit("sendMessage"), Some(3));
        assert_eq!(state.take_rate_limit("sendMessage"), None);
    }
}
