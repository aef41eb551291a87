//! An album as it is collected, item by item: Telegram sends each item of
//! an album (`media_group_id`) as a message of its own. Pictures are worked
//! on; other items (a video, a GIF, a PDF…) are not, but the album's one
//! answer names them by their place ("3: a video, skipped"), so they need
//! no answer of their own.

use polybot_i18n::{Lang, t};
use serde::{Deserialize, Serialize};

use crate::ids::UpdateId;
use crate::job::AlbumPhoto;

/// One item of an album in the making, as the table keeps it. Stored
/// untagged, so the photos stored before other items existed still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlbumMember {
    /// A picture, stored: worked on.
    Photo(AlbumPhoto),
    /// A picture not yet downloaded: in a group, an item that does not
    /// itself address the bot is only fetched once the album turns out to
    /// (its caption, on another item, addresses the bot).
    Unfetched(UnfetchedPhoto),
    /// Not a picture: named in the answer.
    Skipped(SkippedItem),
}

impl AlbumMember {
    /// The item's message: the album's items are in message order.
    pub fn message_id(&self) -> i64 {
        match self {
            Self::Photo(p) => p.message_id,
            Self::Unfetched(p) => p.message_id,
            Self::Skipped(s) => s.message_id,
        }
    }

    /// The item's caption, as written.
    pub fn caption(&self) -> Option<&str> {
        match self {
            Self::Photo(p) => p.caption.as_deref(),
            Self::Unfetched(p) => p.caption.as_deref(),
            Self::Skipped(s) => s.caption.as_deref(),
        }
    }
}

/// A picture of an album that Telegram still holds: enough to download it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfetchedPhoto {
    pub message_id: i64,
    /// The update that brought it, which names where it is stored.
    pub update_id: UpdateId,
    pub file_id: String,
    /// Size in bytes as Telegram reports it (0 when unknown).
    pub size: u64,
    pub content_type: String,
    pub extension: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// An item of an album that is not a picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedItem {
    pub message_id: i64,
    /// What it is, in words: "a video", "a file that is not a picture".
    pub what: String,
    /// An album's caption may sit on any item, this one included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// An item left out of an album's request, by its place in the album: what
/// the job and its result carry so the answer can name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumSkip {
    /// 1-based place in the album, counting every item; 0 when the place is
    /// unknown (items Telegram did not deliver, said in `what`).
    pub position: u32,
    /// What it is, in words.
    pub what: String,
}

impl AlbumSkip {
    /// The answer's line for it: "3: a video, skipped"; an entry without
    /// a place (0: items that never reached the bot) is its text alone.
    pub fn line(&self, lang: Lang) -> String {
        let what = item_name(&self.what, lang);
        match self.position {
            0 => what,
            place => t!(lang, "album-skipped", number = place, what = what),
        }
    }
}

/// What an album item is ("a video"), in `lang`: stored in English (the
/// catalogue's key is `item-` and the words, as for class names), so an
/// album collected before a language was chosen still reads right; a text
/// the catalogue lacks is shown as it is.
pub fn item_name(what: &str, lang: Lang) -> String {
    let slug: String = what
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    lang.lookup(&format!("item-{}", slug.trim_matches('-')))
        .unwrap_or_else(|| what.to_owned())
}

/// The stored words of the line an album's answer ends with when, in a
/// group, only its captioned item reached the bot (Telegram's privacy
/// mode); [`item_name`] gives the whole sentence.
pub const ONLY_CAPTIONED_USED: &str = "only the captioned photo was used";

/// The places (1-based) of an album's worked-on items, given what was
/// skipped: the places the skipped items leave, in order.
pub fn worked_positions(skipped: &[AlbumSkip], worked: usize) -> Vec<u32> {
    (1..)
        .filter(|p| !skipped.iter().any(|s| s.position == *p))
        .take(worked)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ObjectKey;

    #[test]
    fn members_of_each_kind_read_back_and_old_photos_still_read() {
        let members = vec![
            AlbumMember::Photo(AlbumPhoto {
                message_id: 1,
                original_key: ObjectKey::parse("5/original/a.jpg").expect("key"),
                caption: Some("blur".into()),
            }),
            AlbumMember::Unfetched(UnfetchedPhoto {
                message_id: 2,
                update_id: UpdateId(9),
                file_id: "f".into(),
                size: 10,
                content_type: "image/jpeg".into(),
                extension: "jpg".into(),
                caption: None,
            }),
            AlbumMember::Skipped(SkippedItem {
                message_id: 3,
                what: "a video".into(),
                caption: None,
            }),
        ];
        for member in members {
            let json = serde_json::to_string(&member).expect("json");
            let back: AlbumMember = serde_json::from_str(&json).expect("reads");
            assert_eq!(back, member);
        }
        let old = r#"{"message_id":4,"original_key":"5/original/b.jpg"}"#;
        let back: AlbumMember = serde_json::from_str(old).expect("reads");
        assert!(matches!(back, AlbumMember::Photo(p) if p.message_id == 4));
    }

    #[test]
    fn worked_items_take_the_places_the_skipped_ones_leave() {
        let skipped = [AlbumSkip {
            position: 2,
            what: "a video".into(),
        }];
        assert_eq!(worked_positions(&skipped, 2), vec![1, 3]);
        assert_eq!(worked_positions(&[], 2), vec![1, 2]);
        assert_eq!(skipped[0].line(Lang::En), "2: a video, skipped");
    }
}
