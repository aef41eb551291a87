//! The settings concern: each chat's own [`ChatSettings`] (confidence,
//! classes, output, labels), shared by every gateway, and the detection
//! model's class names as the detectors published them (so a gateway can
//! check `/only dog` against the model that will run, a custom one too).

use async_trait::async_trait;
use polybot_domain::{ChatId, ChatSettings, SettingsChange};

use crate::Result;

/// Per-chat settings and the model's classes. Settings are kept until the
/// chat changes them (no expiry).
#[async_trait]
pub trait Preferences: Send + Sync + 'static {
    /// The chat's settings; the defaults when it never chose any.
    async fn chat_settings(&self, chat: ChatId) -> Result<ChatSettings>;
    /// Makes one change to the chat's settings and returns them as they
    /// now are. Two gateways changing the same chat at once both take
    /// effect (the write is conditional on what was read, and retried).
    async fn change_chat_settings(
        &self,
        chat: ChatId,
        change: SettingsChange,
    ) -> Result<ChatSettings>;
    /// Records the model's class names, in the model's order (a detector
    /// does at start-up; the last writer wins).
    async fn publish_model_classes(&self, classes: &[String]) -> Result<()>;
    /// The model's class names; `None` until a detector published them.
    async fn model_classes(&self) -> Result<Option<Vec<String>>>;
}
