//! How an [`OutMessage`] goes over the wire: the Bot API call that sends
//! it, with its parameters and uploads, and the `message_id` read from the
//! answer. The calls go through [`Transport`], the outbox's seam: the
//! Bot API client in production, a fake in the outbox's tests.

use std::time::Duration;

use async_trait::async_trait;
use polybot_domain::ChatId;
use serde_json::{Value, json};

use crate::botapi::{BotApi, BotApiError, Upload};
use crate::outbox::message::{OutMessage, Sent, SentMessage};

/// The Bot API as the outbox uses it: one call, JSON or multipart, its
/// `result` out.
#[async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    async fn call(
        &self,
        method: &'static str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, BotApiError>;

    async fn call_multipart(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        uploads: Vec<Upload>,
        timeout: Duration,
    ) -> Result<Value, BotApiError>;
}

#[async_trait]
impl Transport for BotApi {
    async fn call(
        &self,
        method: &'static str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, BotApiError> {
        BotApi::call(self, method, params, timeout).await
    }

    async fn call_multipart(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        uploads: Vec<Upload>,
        timeout: Duration,
    ) -> Result<Value, BotApiError> {
        BotApi::call_multipart(self, method, params, uploads, timeout).await
    }
}

fn reply_parameters(reply_to: Option<i64>) -> Option<Value> {
    reply_to.map(|id| {
        // The user may have deleted their photo meanwhile; answer anyway.
        json!({"message_id": id, "allow_sending_without_reply": true})
    })
}

/// What a Bot API answer that is a `Message` is known by: its
/// `message_id`, and a photo's largest size's `file_id`.
fn message_id(answer: &Value) -> Sent {
    let id = answer.get("message_id").and_then(Value::as_i64)?;
    let photo = answer
        .get("photo")
        .and_then(Value::as_array)
        .and_then(|sizes| sizes.last())
        .and_then(|size| size.get("file_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(SentMessage { id, photo })
}

/// Sends `message` to `chat` with one call: what it is known by.
pub(crate) async fn send(
    api: &dyn Transport,
    chat: ChatId,
    message: &OutMessage,
    timeout: Duration,
) -> Result<Sent, BotApiError> {
    let method = message.method();
    let mut keyboard = None;
    let (caption, reply_to, upload) = match message {
        OutMessage::Text {
            text,
            reply_to,
            keyboard,
        } => {
            let mut params = json!({"chat_id": chat.0, "text": text});
            if let Some(rp) = reply_parameters(*reply_to) {
                params["reply_parameters"] = rp;
            }
            if let Some(keyboard) = keyboard {
                params["reply_markup"] = keyboard.to_json();
            }
            let answer = api.call(method, &params, timeout).await?;
            return Ok(message_id(&answer));
        }
        OutMessage::Edit {
            message_id,
            text,
            keyboard,
        } => {
            let mut params = json!({"chat_id": chat.0, "message_id": message_id, "text": text});
            if let Some(keyboard) = keyboard {
                params["reply_markup"] = keyboard.to_json();
            }
            api.call(method, &params, timeout).await?;
            return Ok(Some(SentMessage {
                id: *message_id,
                photo: None,
            }));
        }
        OutMessage::Saved { photos, reply_to } => {
            let mut params = match photos.as_slice() {
                [one] => json!({"chat_id": chat.0, "photo": one.file_id, "caption": one.caption}),
                many => {
                    let media: Vec<Value> = many
                        .iter()
                        .map(|p| json!({"type": "photo", "media": p.file_id, "caption": p.caption}))
                        .collect();
                    json!({"chat_id": chat.0, "media": media})
                }
            };
            if let Some(rp) = reply_parameters(*reply_to) {
                params["reply_parameters"] = rp;
            }
            let answer = api.call(method, &params, timeout).await?;
            // An album's answer is its messages; the first stands for it.
            return Ok(message_id(answer.get(0).unwrap_or(&answer)));
        }
        OutMessage::Delete { message_id } => {
            let params = json!({"chat_id": chat.0, "message_id": message_id});
            api.call(method, &params, timeout).await?;
            return Ok(None);
        }
        OutMessage::MediaGroup {
            items,
            caption,
            reply_to,
        } => {
            const FIELDS: [&str; 10] = [
                "item0", "item1", "item2", "item3", "item4", "item5", "item6", "item7", "item8",
                "item9",
            ];
            let mut media = Vec::new();
            let mut uploads = Vec::new();
            for (i, (item, field)) in items.iter().zip(FIELDS).enumerate() {
                let kind = if item.document { "document" } else { "photo" };
                let mut entry = json!({"type": kind, "media": format!("attach://{field}")});
                match &item.caption {
                    Some(own) => entry["caption"] = json!(own),
                    None if i == 0 && !caption.is_empty() => entry["caption"] = json!(caption),
                    None => {}
                }
                media.push(entry);
                uploads.push(Upload {
                    field,
                    file_name: item.file_name,
                    mime: item.mime,
                    bytes: item.bytes.clone(),
                });
            }
            let mut params = vec![
                ("chat_id", chat.0.to_string()),
                ("media", Value::Array(media).to_string()),
            ];
            if let Some(rp) = reply_parameters(*reply_to) {
                params.push(("reply_parameters", rp.to_string()));
            }
            // The answer is the album's messages; the first stands for it.
            let answer = api
                .call_multipart(method, &params, uploads, timeout)
                .await?;
            return Ok(answer.get(0).and_then(message_id));
        }
        OutMessage::Photo {
            jpeg,
            caption,
            reply_to,
            keyboard: buttons,
        } => {
            keyboard = buttons.as_ref();
            (
                caption,
                reply_to,
                upload("photo", "detections.jpg", "image/jpeg", jpeg),
            )
        }
        OutMessage::Document {
            bytes,
            file_name,
            mime,
            caption,
            reply_to,
        } => (
            caption,
            reply_to,
            upload("document", file_name, mime, bytes),
        ),
    };
    let mut params = vec![
        ("chat_id", chat.0.to_string()),
        ("caption", caption.clone()),
    ];
    if let Some(rp) = reply_parameters(*reply_to) {
        params.push(("reply_parameters", rp.to_string()));
    }
    if let Some(keyboard) = keyboard {
        params.push(("reply_markup", keyboard.to_json().to_string()));
    }
    let answer = api
        .call_multipart(method, &params, vec![upload], timeout)
        .await?;
    Ok(message_id(&answer))
}

/// One file sent as the multipart field `field`.
fn upload(
    field: &'static str,
    file_name: &'static str,
    mime: &'static str,
    bytes: &bytes::Bytes,
) -> Upload {
    Upload {
        field,
        file_name,
        mime,
        bytes: bytes.clone(),
    }
}
