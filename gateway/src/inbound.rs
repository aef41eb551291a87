//! Parsing at the edge: a raw Telegram `Update` becomes an [`Inbound`],
//! the only shape the rest of the gateway sees.

use polybot_domain::{ChatId, UpdateId};
use teloxide::types::{MediaKind, Message, MessageKind, Update, UpdateKind};

/// Telegram's Bot API serves files up to 20 MB to bots.
pub const BOT_API_MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;

/// A photo the user wants analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRef {
    pub file_id: String,
    /// Size in bytes as Telegram reports it (0 when unknown).
    pub size: u64,
    pub content_type: String,
    pub extension: &'static str,
}

/// What an update means to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A photo, or an image sent as a file: becomes a detection job.
    Photo {
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        photo: PhotoRef,
    },
    /// A message we can answer but not analyse (text, a sticker, a PDF…).
    Other {
        update_id: UpdateId,
        chat: ChatId,
        message_id: i64,
        what: &'static str,
    },
    /// An update with no chat to answer (edits, reactions, unknown kinds).
    Ignored {
        update_id: UpdateId,
        kind: &'static str,
    },
}

impl Inbound {
    pub fn update_id(&self) -> UpdateId {
        match self {
            Self::Photo { update_id, .. }
            | Self::Other { update_id, .. }
            | Self::Ignored { update_id, .. } => *update_id,
        }
    }

    pub fn chat(&self) -> Option<ChatId> {
        match self {
            Self::Photo { chat, .. } | Self::Other { chat, .. } => Some(*chat),
            Self::Ignored { .. } => None,
        }
    }
}

/// The update's id, even from JSON teloxide cannot fully parse.
pub fn update_id_of(raw: &serde_json::Value) -> Option<UpdateId> {
    raw.get("update_id").and_then(|v| v.as_i64()).map(UpdateId)
}

/// Why an update could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableUpdate {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("no update_id")]
    NoUpdateId,
}

/// Parses one update's JSON on its own: a panic in the Telegram types'
/// parser is caught here, so one malformed update cannot take the task that
/// reads it down. An update the parser refuses is still answered when its
/// chat can be found in the raw JSON.
pub fn parse_bytes(body: &[u8]) -> Result<Inbound, UnreadableUpdate> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| UnreadableUpdate::NotJson(e.to_string()))?;
    let update_id = update_id_of(&raw).ok_or(UnreadableUpdate::NoUpdateId)?;
    // From the bytes, not from `raw`: teloxide's deserializer needs borrowed
    // strings and silently yields an "unknown" update from a `Value`.
    let parsed = std::panic::catch_unwind(|| {
        serde_json::from_slice::<Update>(body)
            .ok()
            .map(|u| parse(&u))
    });
    match parsed {
        // A message the Telegram types could not read comes back as an
        // "unknown" update: its chat may still be in the raw JSON.
        Ok(Some(Inbound::Ignored {
            kind: "unknown", ..
        })) if raw.get("message").is_some() => {
            tracing::warn!(
                update_id = update_id.0,
                "a message the Telegram types cannot read"
            );
            Ok(fallback(update_id, &raw))
        }
        Ok(Some(inbound)) => Ok(inbound),
        Ok(None) => {
            tracing::warn!(
                update_id = update_id.0,
                "an update the Telegram types cannot read"
            );
            Ok(fallback(update_id, &raw))
        }
        Err(_) => {
            tracing::error!(
                update_id = update_id.0,
                "the Telegram types' parser panicked on an update"
            );
            Ok(fallback(update_id, &raw))
        }
    }
}

/// An update only readable as plain JSON: answered with help when it is a
/// message in a chat, ignored otherwise.
fn fallback(update_id: UpdateId, raw: &serde_json::Value) -> Inbound {
    let message = raw.get("message");
    let chat = message
        .and_then(|m| m.pointer("/chat/id"))
        .and_then(serde_json::Value::as_i64);
    let message_id = message
        .and_then(|m| m.get("message_id"))
        .and_then(serde_json::Value::as_i64);
    match (chat, message_id) {
        (Some(chat), Some(message_id)) => Inbound::Other {
            update_id,
            chat: ChatId(chat),
            message_id,
            what: "a message we could not read",
        },
        _ => Inbound::Ignored {
            update_id,
            kind: "unreadable",
        },
    }
}

pub fn parse(update: &Update) -> Inbound {
    let update_id = UpdateId(i64::from(update.id.0));
    match &update.kind {
        UpdateKind::Message(msg) => parse_message(update_id, msg),
        UpdateKind::EditedMessage(_) => Inbound::Ignored {
            update_id,
            kind: "edited_message",
        },
        UpdateKind::ChannelPost(_) => Inbound::Ignored {
            update_id,
            kind: "channel_post",
        },
        UpdateKind::CallbackQuery(_) => Inbound::Ignored {
            update_id,
            kind: "callback_query",
        },
        UpdateKind::Error(_) => Inbound::Ignored {
            update_id,
            kind: "unknown",
        },
        _ => Inbound::Ignored {
            update_id,
            kind: "other",
        },
    }
}

fn parse_message(update_id: UpdateId, msg: &Message) -> Inbound {
    let chat = ChatId(msg.chat.id.0);
    let message_id = i64::from(msg.id.0);
    let other = |what| Inbound::Other {
        update_id,
        chat,
        message_id,
        what,
    };
    let MessageKind::Common(common) = &msg.kind else {
        // Service messages (member joined, pinned…) are not addressed to us.
        return Inbound::Ignored {
            update_id,
            kind: "service_message",
        };
    };
    match &common.media_kind {
        MediaKind::Photo(p) => {
            // Telegram sends several sizes of one photo; the largest has the
            // most detail for the detector.
            let Some(best) = p
                .photo
                .iter()
                .max_by_key(|s| u64::from(s.width) * u64::from(s.height))
            else {
                return other("an empty photo");
            };
            Inbound::Photo {
                update_id,
                chat,
                message_id,
                photo: PhotoRef {
                    file_id: best.file.id.0.clone(),
                    size: u64::from(best.file.size),
                    content_type: "image/jpeg".into(),
                    extension: "jpg",
                },
            }
        }
        MediaKind::Document(d) => {
            let mime = d
                .document
                .mime_type
                .as_ref()
                .map(|m| m.essence_str().to_owned());
            let name = d
                .document
                .file_name
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match image_type(mime.as_deref(), &name) {
                Some((content_type, extension)) => Inbound::Photo {
                    update_id,
                    chat,
                    message_id,
                    photo: PhotoRef {
                        file_id: d.document.file.id.0.clone(),
                        size: u64::from(d.document.file.size),
                        content_type: content_type.into(),
                        extension,
                    },
                },
                None => other("a file that is not a picture"),
            }
        }
        MediaKind::Text(_) => other("text"),
        MediaKind::Sticker(_) => other("a sticker"),
        MediaKind::Video(_) | MediaKind::Animation(_) | MediaKind::VideoNote(_) => other("a video"),
        _ => other("a message"),
    }
}

/// Content type and file extension of an image document, from its MIME
/// type or, failing that, its file name.
fn image_type(mime: Option<&str>, name: &str) -> Option<(&'static str, &'static str)> {
    const TYPES: [(&str, &str, &[&str]); 6] = [
        ("image/jpeg", "jpg", &[".jpg", ".jpeg"]),
        ("image/png", "png", &[".png"]),
        ("image/webp", "webp", &[".webp"]),
        ("image/gif", "gif", &[".gif"]),
        ("image/bmp", "bmp", &[".bmp"]),
        ("image/tiff", "tiff", &[".tif", ".tiff"]),
    ];
    if let Some(mime) = mime {
        if let Some((ct, ext, _)) = TYPES.iter().find(|(ct, _, _)| *ct == mime) {
            return Some((ct, ext));
        }
        if mime.starts_with("image/") {
            // Some other image type: let the detector decide whether it can read it.
            return Some(("application/octet-stream", "img"));
        }
    }
    TYPES
        .iter()
        .find(|(_, _, suffixes)| suffixes.iter().any(|s| name.ends_with(s)))
        .map(|(ct, ext, _)| (*ct, *ext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(message: serde_json::Value) -> Update {
        let mut msg = json!({
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": 1243002838_i64, "type": "private", "first_name": "A"},
            "from": {"id": 1243002838_i64, "is_bot": false, "first_name": "A"},
        });
        for (k, v) in message.as_object().into_iter().flatten() {
            msg[k] = v.clone();
        }
        // teloxide's Update deserializer needs borrowed strings: parse text, as the webhook does.
        serde_json::from_str(&json!({"update_id": 42, "message": msg}).to_string())
            .expect("valid update")
    }

    fn size(id: &str, w: u32, bytes: u32) -> serde_json::Value {
        json!({"file_id": id, "file_unique_id": format!("u{id}"), "width": w, "height": w, "file_size": bytes})
    }

    #[test]
    fn a_photo_message_uses_the_largest_size() {
        let u = update(
            json!({"photo": [size("s", 90, 1000), size("l", 660, 90000), size("m", 320, 9000)]}),
        );
        match parse(&u) {
            Inbound::Photo {
                chat,
                message_id,
                photo,
                update_id,
            } => {
                assert_eq!(chat, ChatId(1243002838));
                assert_eq!(message_id, 7);
                assert_eq!(update_id, UpdateId(42));
                assert_eq!(photo.file_id, "l");
                assert_eq!(photo.size, 90000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_image_sent_as_a_file_is_a_photo() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "ud", "file_name": "cat.PNG",
                                      "mime_type": "image/png", "file_size": 5}});
        match parse(&update(doc)) {
            Inbound::Photo { photo, .. } => {
                assert_eq!(
                    (photo.content_type.as_str(), photo.extension),
                    ("image/png", "png")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pdf_sent_as_a_file_is_answered_but_not_analysed() {
        let doc = json!({"document": {"file_id": "d", "file_unique_id": "ud", "file_name": "a.pdf",
                                      "mime_type": "application/pdf", "file_size": 5}});
        assert!(matches!(
            parse(&update(doc)),
            Inbound::Other {
                what: "a file that is not a picture",
                ..
            }
        ));
    }

    #[test]
    fn text_is_answered_with_help() {
        assert!(matches!(
            parse(&update(json!({"text": "hi"}))),
            Inbound::Other { what: "text", .. }
        ));
    }

    #[test]
    fn unknown_update_kinds_are_ignored_not_rejected() {
        let u: Update = serde_json::from_str(r#"{"update_id": 5, "brand_new_kind": {"x": 1}}"#)
            .expect("teloxide keeps unknown kinds");
        assert_eq!(
            parse(&u),
            Inbound::Ignored {
                update_id: UpdateId(5),
                kind: "unknown"
            }
        );
    }

    #[test]
    fn a_message_the_telegram_types_refuse_is_still_answered_in_its_chat() {
        // `date` must be a number: teloxide refuses this message (a malformed
        // `photo` is not enough: it reads that as a service message).
        let body = br#"{"update_id": 9, "message": {"message_id": 3, "date": "yesterday",
            "chat": {"id": 77, "type": "private"}, "text": "hi"}}"#;
        assert_eq!(
            parse_bytes(body),
            Ok(Inbound::Other {
                update_id: UpdateId(9),
                chat: ChatId(77),
                message_id: 3,
                what: "a message we could not read"
            })
        );
        assert_eq!(
            parse_bytes(br#"{"update_id": 10, "message": 5}"#),
            Ok(Inbound::Ignored {
                update_id: UpdateId(10),
                kind: "unreadable"
            })
        );
        assert!(parse_bytes(b"[1,2]").is_err());
    }

    #[test]
    fn image_type_falls_back_to_the_file_name() {
        assert_eq!(image_type(None, "x.jpeg"), Some(("image/jpeg", "jpg")));
        assert_eq!(
            image_type(Some("application/octet-stream"), "x.webp"),
            Some(("image/webp", "webp"))
        );
        assert_eq!(image_type(Some("text/plain"), "x.txt"), None);
        assert_eq!(
            image_type(Some("image/heic"), "x.heic"),
            Some(("application/octet-stream", "img"))
        );
    }
}
