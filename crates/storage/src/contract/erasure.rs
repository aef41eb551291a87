//! The [`Erasure`] contract (a chat forgotten, and nothing of another chat),
//! the object store's erasure, and the retention clock as the adapters
//! store it (through an [`ExpiryProbe`], since no trait shows an expiry).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use polybot_domain::{
    AlbumId, AlbumMember, AlbumPhoto, AnswerExtra, BotId, ChatId, ClassChoice, FailureKind,
    ObjectKey, PredictionId, SettingsChange, UpdateId, now_epoch,
};

use super::{pending, random_i64, summary};
use crate::{
    AlbumClose, AlbumJoin, AlbumKey, AnsweredPhoto, ClaimKey, NoticeState, ObjectStore,
    PredictionTable, PutMode, Retention, Saved, StorageError,
};

/// Everything one chat leaves in the table, as a test writes it.
struct ChatItems {
    chat: ChatId,
    /// Its requests: the first succeeded and was answered, the second is
    /// still pending (its job running).
    answered: PredictionId,
    running: PredictionId,
    /// The bot's answer message.
    answer: i64,
    finished_album: AlbumKey,
    pending_album: AlbumKey,
    /// A kept update from the chat.
    deferred: (BotId, UpdateId),
}

const QUIET: Duration = Duration::ZERO;
const LEASE: Duration = Duration::from_secs(60);

fn album_key(chat: ChatId) -> AlbumKey {
    AlbumKey {
        chat,
        album: AlbumId::parse(format!("g{}", random_i64().unsigned_abs())).expect("album id"),
    }
}

fn album_photo(chat: ChatId, message_id: i64) -> AlbumMember {
    AlbumMember::Photo(AlbumPhoto {
        message_id,
        original_key: ObjectKey::original(chat, PredictionId::new(), "jpg"),
        caption: None,
    })
}

/// Writes one of everything the table keeps of `chat`.
async fn fill(table: &dyn PredictionTable, chat: ChatId, bot: BotId) -> ChatItems {
    let t0 = now_epoch();
    let answered = pending(chat, t0 - 1.0);
    let running = pending(chat, t0);
    for record in [&answered, &running] {
        table.create(record).await.expect("table: create");
    }
    let id = answered.prediction_id;
    let saved = table.save_result(&summary(id, &["dog"])).await;
    assert_eq!(saved.expect("table: save_result"), Saved::Stored);
    table
        .set_answer_file(id, "AgACAgIAAxkBAAIBZ2erase")
        .await
        .expect("table: set_answer_file");
    for key in [
        ClaimKey::Reply(id),
        ClaimKey::Extra(id, AnswerExtra::Details),
    ] {
        assert!(table.claim(key, LEASE).await.expect("claim").is_acquired());
        table.finish(key).await.expect("table: finish");
    }
    assert!(
        table
            .attach_notice(running.prediction_id, 501)
            .await
            .expect("table: attach_notice")
    );
    let answer = 502;
    let photo = AnsweredPhoto {
        prediction_id: id,
        original_key: answered.original_key.clone(),
    };
    table
        .record_answer(chat, answer, &photo)
        .await
        .expect("table: record_answer");
    let finished_album = album_key(chat);
    let pending_album = album_key(chat);
    for key in [&finished_album, &pending_album] {
        let joined = table.join_album(key, &album_photo(chat, 600)).await;
        assert_eq!(joined.expect("table: join_album"), AlbumJoin::Joined);
    }
    let closed = table.close_album(&finished_album, QUIET, LEASE).await;
    assert!(matches!(closed, Ok(AlbumClose::Closed(_))), "{closed:?}");
    table
        .finish_album(&finished_album)
        .await
        .expect("table: finish_album");
    let update = UpdateId(random_i64());
    let body = format!(
        r#"{{"update_id":{update},"message":{{"message_id":7,"chat":{{"id":{chat},"type":"private"}},"text":"/help"}}}}"#
    );
    table
        .defer_update(bot, update, &body, Duration::ZERO)
        .await
        .expect("table: defer_update");
    table
        .change_chat_settings(
            chat,
            SettingsChange::Classes(ClassChoice::Only(["dog".to_owned()].into())),
        )
        .await
        .expect("table: change_chat_settings");
    ChatItems {
        chat,
        answered: id,
        running: running.prediction_id,
        answer,
        finished_album,
        pending_album,
        deferred: (bot, update),
    }
}

/// What is still there of a chat's items, each `true` when present.
#[derive(Debug, PartialEq, Eq)]
struct Present {
    records: [bool; 2],
    listed: usize,
    reply_claim: bool,
    extra_claim: bool,
    notice: bool,
    answer: bool,
    finished_album: bool,
    pending_album: bool,
    deferred: bool,
    settings: bool,
}

impl Present {
    fn all() -> Self {
        Self {
            records: [true; 2],
            listed: 2,
            reply_claim: true,
            extra_claim: true,
            notice: true,
            answer: true,
            finished_album: true,
            pending_album: true,
            deferred: true,
            settings: true,
        }
    }

    fn none() -> Self {
        Self {
            records: [false; 2],
            listed: 0,
            reply_claim: false,
            extra_claim: false,
            notice: false,
            answer: false,
            finished_album: false,
            pending_album: false,
            deferred: false,
            settings: false,
        }
    }
}

/// Looks at each of `items` through the traits. Looking changes some of
/// them (a claim taken on a forgotten key, an album joined again, a due
/// update taken): call it once per chat, at the end.
async fn look(
    table: &dyn PredictionTable,
    items: &ChatItems,
    due: &[(BotId, UpdateId)],
) -> Present {
    let chat = items.chat;
    let mut records = [false; 2];
    for (present, id) in records.iter_mut().zip([items.answered, items.running]) {
        *present = table.get(id).await.expect("table: get").is_some();
    }
    let listed = table
        .list_by_chat(chat, 10)
        .await
        .expect("table: list_by_chat")
        .len();
    // A finished claim answers Done; a forgotten one is taken afresh.
    let done = async |key: ClaimKey| {
        let claim = table.claim(key, LEASE).await.expect("table: claim");
        if let Some(lease) = claim.lease() {
            table.release(key, lease).await.expect("table: release");
        }
        claim == crate::Claim::Done
    };
    let reply_claim = done(ClaimKey::Reply(items.answered)).await;
    let extra_claim = done(ClaimKey::Extra(items.answered, AnswerExtra::Details)).await;
    let notice =
        table.notice(items.running).await.expect("table: notice") != NoticeState::default();
    let answer = table
        .answered_photo(chat, items.answer)
        .await
        .expect("table: answered_photo")
        .is_some();
    // A finished album refuses items; a forgotten one is a new album.
    let joined = table
        .join_album(&items.finished_album, &album_photo(chat, 601))
        .await
        .expect("table: join_album");
    let finished_album = joined == AlbumJoin::TooLate;
    let pending_album = table
        .pending_albums(QUIET, 10_000)
        .await
        .expect("table: pending_albums")
        .contains(&items.pending_album);
    let deferred = due.contains(&items.deferred);
    let settings = table
        .chat_settings(chat)
        .await
        .expect("table: chat_settings")
        != Default::default();
    Present {
        records,
        listed,
        reply_claim,
        extra_claim,
        notice,
        answer,
        finished_album,
        pending_album,
        deferred,
        settings,
    }
}

/// The [`Erasure`](crate::Erasure) contract: erasing a chat removes every
/// item of it (records, claims, notices, answers, albums, kept updates,
/// settings) and nothing of another chat; it says how many records it
/// erased, and a second erasure finds none; a job of the erased chat that
/// saves its result afterwards finds its prediction gone and does not
/// bring it back.
pub async fn erasure(table: &dyn PredictionTable) {
    let bot = BotId(random_i64());
    let forgotten = fill(table, ChatId(random_i64()), bot).await;
    let kept = fill(table, ChatId(random_i64()), bot).await;

    assert_eq!(
        table
            .erase_chat(forgotten.chat)
            .await
            .expect("table: erase_chat"),
        2,
        "table: erase_chat counts the chat's prediction records"
    );
    assert_eq!(
        table
            .erase_chat(forgotten.chat)
            .await
            .expect("table: erase_chat again"),
        0,
        "table: a second erase_chat finds nothing (idempotent)"
    );

    // The chat's running job finishes after the erasure.
    let late = summary(forgotten.running, &["cat"]);
    assert_eq!(
        table.save_result(&late).await.expect("table: save_result"),
        Saved::Gone,
        "table: a result saved after the erasure finds its prediction gone"
    );
    match table
        .save_failure(forgotten.running, FailureKind::Internal)
        .await
    {
        Err(StorageError::NotFound(_)) => {}
        other => panic!("table: save_failure after the erasure must be NotFound, got {other:?}"),
    }
    table
        .set_answer_file(forgotten.running, "AgACAgIAAxkBAAIBZ2late")
        .await
        .expect("table: set_answer_file after the erasure succeeds as a no-op");

    // Kept updates: the other chat's is due (the index may lag a moment).
    let mut due = Vec::new();
    for _ in 0..40 {
        due.extend(
            table
                .due_updates(LEASE, 10_000)
                .await
                .expect("table: due_updates")
                .into_iter()
                .filter(|d| d.bot == bot)
                .map(|d| (d.bot, d.update)),
        );
        if due.contains(&kept.deferred) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        look(table, &forgotten, &due).await,
        Present::none(),
        "table: nothing of an erased chat is left"
    );
    assert_eq!(
        look(table, &kept, &due).await,
        Present::all(),
        "table: erasing one chat keeps every item of another"
    );
}

/// The object store's erasure: every object of a chat goes, whatever its
/// versions, and nothing of another chat, not even of a chat whose id
/// starts with the same digits; erasing keys takes exactly those keys.
/// Each says how many objects there were, so doing it again says 0.
pub async fn object_erasure(store: &dyn ObjectStore) {
    // Below 10^17, so that a chat ten times larger exists too.
    let chat = ChatId(random_i64() % 100_000_000_000_000_000);
    let longer = ChatId(chat.0 * 10 + 3);
    let other = ChatId(-random_i64());
    let id = PredictionId::new();
    let put = async |key: &ObjectKey, bytes: &'static [u8]| {
        store
            .put(
                key,
                Bytes::from_static(bytes),
                "image/jpeg",
                PutMode::Overwrite,
            )
            .await
            .unwrap_or_else(|e| panic!("object store: put {key}: {e}"));
    };
    let of = |chat: ChatId| {
        [
            ObjectKey::original(chat, id, "jpg"),
            ObjectKey::predicted(chat, id),
            ObjectKey::crop(chat, id, 0),
        ]
    };
    for chat in [chat, longer, other] {
        for key in of(chat) {
            put(&key, b"first").await;
        }
    }
    // Overwritten: a versioned bucket keeps the first as a noncurrent
    // version, which must go too.
    put(&ObjectKey::predicted(chat, id), b"second").await;

    assert_eq!(
        store
            .erase_chat(chat)
            .await
            .expect("object store: erase_chat"),
        3,
        "object store: erase_chat counts the chat's objects, each once"
    );
    assert_eq!(
        store
            .erase_chat(chat)
            .await
            .expect("object store: erase_chat again"),
        0,
        "object store: a second erase_chat finds nothing"
    );
    let exists = async |key: &ObjectKey| match store.get(key).await {
        Ok(_) => true,
        Err(StorageError::NotFound(_)) => false,
        Err(e) => panic!("object store: get {key}: {e}"),
    };
    for key in of(chat) {
        assert!(!exists(&key).await, "object store: {key} must be erased");
    }
    for key in of(longer).iter().chain(&of(other)) {
        assert!(
            exists(key).await,
            "object store: {key} of another chat must stay"
        );
    }

    // Keys: exactly those, not a longer key they are the start of.
    let [original, predicted, crop] = of(other);
    let longer_key = ObjectKey::parse(format!("{predicted}.bak")).expect("key");
    put(&longer_key, b"backup").await;
    let never = ObjectKey::filtered(other, id, "png");
    assert_eq!(
        store
            .erase(&[predicted.clone(), crop.clone(), never.clone()])
            .await
            .expect("object store: erase"),
        2,
        "object store: erase counts the keys that existed"
    );
    assert_eq!(
        store
            .erase(&[predicted.clone(), crop.clone(), never])
            .await
            .expect("object store: erase again"),
        0,
        "object store: erasing keys again finds nothing"
    );
    assert!(!exists(&predicted).await && !exists(&crop).await);
    assert!(
        exists(&original).await && exists(&longer_key).await,
        "object store: erase takes exactly its keys"
    );
    for chat in [longer, other] {
        store
            .erase_chat(chat)
            .await
            .expect("object store: clean up");
    }
}

/// Reads what an adapter stored as an item's expiry, which no trait
/// shows: each adapter's tests implement it on their backend.
#[async_trait]
pub trait ExpiryProbe: Send + Sync {
    /// The stored expiry of `item`, in seconds since the Unix epoch;
    /// `None` when the item or its expiry is not stored.
    async fn expires_at(&self, item: &Retained) -> Option<f64>;
}

/// An item kept for the retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retained {
    Prediction(PredictionId),
    Claim(ClaimKey),
    Notice(PredictionId),
    Answer(ChatId, i64),
}

/// The retention clock: a table opened with `retention` keeps predictions
/// (from their creation), reply and extra claims, notices and answers (from
/// their last write) for that long, as `probe` reads the stored expiry.
pub async fn retention(table: &dyn PredictionTable, retention: Retention, probe: &dyn ExpiryProbe) {
    let chat = ChatId(random_i64());
    let record = pending(chat, now_epoch());
    let id = record.prediction_id;
    table.create(&record).await.expect("table: create");
    let claims = [ClaimKey::Reply(id), ClaimKey::Extra(id, AnswerExtra::Crops)];
    for key in claims {
        assert!(table.claim(key, LEASE).await.expect("claim").is_acquired());
        table.finish(key).await.expect("table: finish");
    }
    table
        .attach_notice(id, 9)
        .await
        .expect("table: attach_notice");
    let photo = AnsweredPhoto {
        prediction_id: id,
        original_key: record.original_key.clone(),
    };
    table
        .record_answer(chat, 10, &photo)
        .await
        .expect("table: record_answer");
    let expected = now_epoch() + retention.as_duration().as_secs_f64();
    let items = [
        Retained::Prediction(id),
        Retained::Claim(claims[0]),
        Retained::Claim(claims[1]),
        Retained::Notice(id),
        Retained::Answer(chat, 10),
    ];
    for item in items {
        let at = probe
            .expires_at(&item)
            .await
            .unwrap_or_else(|| panic!("table: {item:?} must have an expiry"));
        assert!(
            (at - expected).abs() < 60.0,
            "table: {item:?} must be kept {} days: expires at {at}, expected about {expected}",
            retention.as_days()
        );
    }
}
