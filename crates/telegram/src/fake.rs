//! A [`Messenger`] for tests: it records what the bot would have sent,
//! serves files from memory, fails the calls a test scripts, and can hold
//! sends at a gate to make them slow. For other crates' tests, with the
//! `test-util` feature.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::ChatId;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::MessengerError;
use crate::outbox::{SavedPhoto, SentMessage};
use crate::port::{CallbackQueryId, Document, Keyboard, MediaItem, Messenger};

/// The calls a test can script a failure for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Text,
    Photo,
    Document,
    MediaGroup,
    Edit,
    Delete,
    Download,
    /// `send_keyboard` and `edit_keyboard`.
    Keyboard,
    Button,
    /// `send_saved_photos`: "saved photos: <file_id> (<caption>)|…".
    Saved,
}

/// Records sends as one line each (`"text: …"`, `"photo: <caption>"`,
/// `"document: <caption>"`, `"album of N: <caption>"` (and `[<item
/// caption>|…]` when its items have captions of their own), `"edit <id>: …"`,
/// `"delete <id>"`, `"keyboard: <text> [<button>|…]"`, `"edit keyboard
/// <id>: <text> [<button>|…]"`, `"button <query>: <toast>"`), in the order
/// they completed.
pub struct FakeMessenger {
    gate: Semaphore,
    started: AtomicUsize,
    started_notify: Notify,
    sent: Mutex<Vec<String>>,
    /// The chats a chat action was shown in, in order.
    actions: Mutex<Vec<ChatId>>,
    failures: Mutex<HashMap<Call, VecDeque<MessengerError>>>,
    files: Mutex<HashMap<String, Bytes>>,
}

impl FakeMessenger {
    /// Every send goes through at once.
    pub fn new() -> Arc<Self> {
        Self::gated(Semaphore::MAX_PERMITS)
    }

    /// Only `permits` sends complete; the rest wait until [`Self::open`].
    pub fn gated(permits: usize) -> Arc<Self> {
        Arc::new(Self {
            gate: Semaphore::new(permits),
            started: AtomicUsize::new(0),
            started_notify: Notify::new(),
            sent: Mutex::new(Vec::new()),
            actions: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
        })
    }

    /// The chats a chat action ("sending photo…") was shown in, in order.
    pub fn actions(&self) -> Vec<ChatId> {
        lock(&self.actions).clone()
    }

    /// Lets `n` more held sends complete.
    pub fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// The next call of `call` fails with `error` (scripts queue up).
    pub fn fail_next(&self, call: Call, error: MessengerError) {
        lock(&self.failures)
            .entry(call)
            .or_default()
            .push_back(error);
    }

    /// A file Telegram would serve for `file_id`.
    pub fn serve(&self, file_id: &str, bytes: impl Into<Bytes>) {
        lock(&self.files).insert(file_id.to_owned(), bytes.into());
    }

    /// What was sent so far.
    pub fn sent(&self) -> Vec<String> {
        lock(&self.sent).clone()
    }

    /// Waits until `n` sends have started (they may be held at the gate).
    pub async fn until_started(&self, n: usize) {
        while self.started.load(Ordering::SeqCst) < n {
            let wait = self.started_notify.notified();
            if self.started.load(Ordering::SeqCst) >= n {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), wait).await;
        }
    }

    fn scripted(&self, call: Call) -> Result<(), MessengerError> {
        match lock(&self.failures)
            .get_mut(&call)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    async fn pass(&self, call: Call, line: String) -> Result<(), MessengerError> {
        self.pass_kept(call, line).await.map(drop)
    }

    /// [`Self::pass`] for a send that returns a message: its id, numbered
    /// from 1 in the order sends completed.
    async fn pass_kept(&self, call: Call, line: String) -> Result<Option<i64>, MessengerError> {
        self.scripted(call)?;
        self.started.fetch_add(1, Ordering::SeqCst);
        self.started_notify.notify_waiters();
        self.gate
            .acquire()
            .await
            .map_err(|e| MessengerError::Unavailable(e.into()))?
            .forget();
        let mut sent = lock(&self.sent);
        sent.push(line);
        Ok(i64::try_from(sent.len()).ok())
    }
}

/// A keyboard's button labels, `|` between them.
fn buttons(keyboard: &Keyboard) -> String {
    let labels: Vec<&str> = keyboard
        .0
        .iter()
        .flatten()
        .map(|b| b.text.as_str())
        .collect();
    labels.join("|")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl Messenger for FakeMessenger {
    async fn send_text(
        &self,
        _chat: ChatId,
        text: &str,
        _reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        self.pass(Call::Text, format!("text: {text}")).await
    }

    async fn send_photo(
        &self,
        _chat: ChatId,
        _jpeg: Bytes,
        caption: &str,
        _reply_to: Option<i64>,
        keyboard: Option<Keyboard>,
    ) -> Result<Option<SentMessage>, MessengerError> {
        let line = match keyboard {
            Some(keyboard) => format!("photo: {caption} [{}]", buttons(&keyboard)),
            None => format!("photo: {caption}"),
        };
        let id = self.pass_kept(Call::Photo, line).await?;
        Ok(id.map(|id| SentMessage {
            id,
            photo: Some(format!("fake-photo-{id}")),
        }))
    }

    async fn send_saved_photos(
        &self,
        _chat: ChatId,
        photos: Vec<SavedPhoto>,
        _reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let saved: Vec<String> = photos
            .iter()
            .map(|p| format!("{} ({})", p.file_id, p.caption))
            .collect();
        self.pass(Call::Saved, format!("saved photos: {}", saved.join("|")))
            .await
    }

    async fn send_document(
        &self,
        _chat: ChatId,
        file: Document,
        _reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError> {
        self.pass_kept(Call::Document, format!("document: {}", file.caption))
            .await
    }

    async fn send_media_group(
        &self,
        _chat: ChatId,
        items: Vec<MediaItem>,
        caption: &str,
        _reply_to: Option<i64>,
    ) -> Result<(), MessengerError> {
        let own: Vec<&str> = items.iter().filter_map(|i| i.caption.as_deref()).collect();
        let line = if own.is_empty() {
            format!("album of {}: {caption}", items.len())
        } else {
            format!("album of {}: {caption}[{}]", items.len(), own.join("|"))
        };
        self.pass(Call::MediaGroup, line).await
    }

    /// Notices are best effort and not recorded: none is ever shown.
    async fn send_notice(
        &self,
        _chat: ChatId,
        _text: &str,
        _reply_to: Option<i64>,
        _cancel: CancellationToken,
    ) -> Option<i64> {
        None
    }

    async fn edit_text(
        &self,
        _chat: ChatId,
        message_id: i64,
        text: &str,
    ) -> Result<(), MessengerError> {
        self.pass(Call::Edit, format!("edit {message_id}: {text}"))
            .await
    }

    async fn send_keyboard(
        &self,
        _chat: ChatId,
        text: &str,
        keyboard: Keyboard,
        _reply_to: Option<i64>,
    ) -> Result<Option<i64>, MessengerError> {
        let line = format!("keyboard: {text} [{}]", buttons(&keyboard));
        self.pass_kept(Call::Keyboard, line).await
    }

    async fn edit_keyboard(
        &self,
        _chat: ChatId,
        message_id: i64,
        text: &str,
        keyboard: Keyboard,
    ) -> Result<(), MessengerError> {
        let line = format!(
            "edit keyboard {message_id}: {text} [{}]",
            buttons(&keyboard)
        );
        self.pass(Call::Keyboard, line).await
    }

    async fn answer_button(
        &self,
        query: &CallbackQueryId,
        toast: Option<&str>,
    ) -> Result<(), MessengerError> {
        let line = format!("button {}: {}", query.0, toast.unwrap_or(""));
        self.pass(Call::Button, line).await
    }

    async fn delete(&self, _chat: ChatId, message_id: i64) -> Result<(), MessengerError> {
        self.pass(Call::Delete, format!("delete {message_id}"))
            .await
    }

    async fn show_progress(&self, chat: ChatId) {
        lock(&self.actions).push(chat);
    }

    async fn download(&self, file_id: &str, max: u64) -> Result<Bytes, MessengerError> {
        self.scripted(Call::Download)?;
        let bytes = lock(&self.files).get(file_id).cloned().ok_or_else(|| {
            MessengerError::Rejected(format!("Bad Request: invalid file_id {file_id}").into())
        })?;
        let size = bytes.len() as u64;
        if size > max {
            return Err(MessengerError::TooLarge { size, limit: max });
        }
        Ok(bytes)
    }
}
