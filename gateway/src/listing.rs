//! `ListPredictions`' pages (AIP-158): the request's filters parsed once,
//! pages read from the table by cursor, and the page token that carries a
//! cursor from one page to the next, bound to the filters it was made for.

use polybot_domain::{Action, ChatId, PredictionId, PredictionRecord};
use polybot_storage::{ListCursor, Predictions, StorageError, TimeWindow};
use sha2::{Digest, Sha256};

/// The page size when the request names none.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The largest page; a larger request is read as this (AIP-158 coerces).
pub const MAX_PAGE_SIZE: usize = 100;
/// How many records one table read asks for while an action filter skips
/// others: enough that a sparse action needs few reads.
const BATCH: usize = 100;

/// The action names a listing filters by, as `Action` spells them.
pub const ACTIONS: [&str; 7] = [
    "detect",
    "blur",
    "contour",
    "rotate",
    "segment",
    "salt_and_pepper",
    "concat",
];

/// What a request for a page asks for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub chat: ChatId,
    pub size: usize,
    /// One of [`ACTIONS`]; `None`: every action.
    pub action: Option<&'static str>,
    pub window: TimeWindow,
    /// Where the page starts; `None`: the first page.
    pub after: Option<ListCursor>,
}

/// A request that cannot be served as it is; the message says why.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    #[error("chat_id must be set")]
    NoChat,
    #[error("unknown action {0:?}; one of: {list}", list = ACTIONS.join(", "))]
    UnknownAction(String),
    #[error("created_after must be before created_before")]
    EmptyWindow,
    #[error("page_token is not one this service gave")]
    BadToken,
    #[error(
        "page_token was made for other filters; pass the same chat_id, action and times as the first page"
    )]
    OtherFilters,
}

/// One page: its records and the token of the next, if any.
#[derive(Debug)]
pub struct Page {
    pub records: Vec<PredictionRecord>,
    pub next_token: Option<String>,
}

impl PageQuery {
    /// Checks a request's fields. `size` 0 is the default; `token` empty is
    /// the first page.
    pub fn parse(
        chat: i64,
        size: u32,
        token: &str,
        action: &str,
        window: TimeWindow,
    ) -> Result<Self, QueryError> {
        if chat == 0 {
            return Err(QueryError::NoChat);
        }
        let action = match action.trim() {
            "" => None,
            name => Some(
                ACTIONS
                    .iter()
                    .copied()
                    .find(|a| *a == name.to_ascii_lowercase())
                    .ok_or_else(|| QueryError::UnknownAction(name.to_owned()))?,
            ),
        };
        if let (Some(from), Some(until)) = (window.from, window.until)
            && from >= until
        {
            return Err(QueryError::EmptyWindow);
        }
        let size = match size {
            0 => DEFAULT_PAGE_SIZE,
            n => (n as usize).min(MAX_PAGE_SIZE),
        };
        let mut query = Self {
            chat: ChatId(chat),
            size,
            action,
            window,
            after: None,
        };
        if !token.is_empty() {
            query.after = Some(query.read_token(token)?);
        }
        Ok(query)
    }

    /// Reads the page after `self`'s: at most `size` records, most recent
    /// first, and a token when more may follow.
    pub async fn read(&self, table: &dyn Predictions) -> Result<Page, StorageError> {
        let mut records = Vec::with_capacity(self.size + 1);
        let mut after = self.after;
        // One more than the page, so the last page says so (no token)
        // instead of leading to an empty one.
        let wanted = self.size + 1;
        loop {
            let batch_size = if self.action.is_some() {
                BATCH
            } else {
                wanted - records.len()
            };
            let batch = table
                .chat_predictions(self.chat, self.window, after, batch_size)
                .await?;
            let exhausted = batch.len() < batch_size;
            for record in batch {
                after = Some(ListCursor::after(&record));
                if self.keeps(&record) {
                    records.push(record);
                    if records.len() == wanted {
                        break;
                    }
                }
            }
            if exhausted || records.len() == wanted {
                break;
            }
        }
        let next_token = if records.len() == wanted {
            records.pop();
            records
                .last()
                .map(|last| self.token(ListCursor::after(last)))
        } else {
            None
        };
        Ok(Page {
            records,
            next_token,
        })
    }

    fn keeps(&self, record: &PredictionRecord) -> bool {
        self.action
            .is_none_or(|name| action_name(&record.kind) == name)
    }

    /// What the token is bound to: the filters, not the page size (which
    /// may change between pages).
    fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(format!(
            "{}|{}|{:?}|{:?}",
            self.chat,
            self.action.unwrap_or(""),
            self.window.from.map(f64::to_bits),
            self.window.until.map(f64::to_bits),
        ));
        hex::encode(&hash.finalize()[..8])
    }

    /// A token: opaque to clients (hex), holding the cursor and the
    /// filters' fingerprint.
    fn token(&self, cursor: ListCursor) -> String {
        let plain = format!(
            "1|{}|{}|{}",
            cursor.created_at.to_bits(),
            cursor.id,
            self.fingerprint()
        );
        hex::encode(plain)
    }

    fn read_token(&self, token: &str) -> Result<ListCursor, QueryError> {
        let bytes = hex::decode(token).map_err(|_| QueryError::BadToken)?;
        let plain = String::from_utf8(bytes).map_err(|_| QueryError::BadToken)?;
        let mut parts = plain.split('|');
        let (Some("1"), Some(bits), Some(id), Some(fingerprint), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(QueryError::BadToken);
        };
        let created_at = bits
            .parse::<u64>()
            .map(f64::from_bits)
            .map_err(|_| QueryError::BadToken)?;
        let id = id
            .parse::<PredictionId>()
            .map_err(|_| QueryError::BadToken)?;
        if fingerprint.len() != 16 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(QueryError::BadToken);
        }
        if fingerprint != self.fingerprint() {
            return Err(QueryError::OtherFilters);
        }
        Ok(ListCursor { created_at, id })
    }
}

/// The name a listing filters `action` by.
pub fn action_name(action: &Action) -> &'static str {
    use polybot_domain::Filter;
    match action {
        Action::Detect => "detect",
        Action::Concat(_) => "concat",
        Action::Filter(f) => match f {
            Filter::Blur { .. } => "blur",
            Filter::Contour => "contour",
            Filter::Rotate { .. } => "rotate",
            Filter::Segment { .. } => "segment",
            Filter::SaltAndPepper { .. } => "salt_and_pepper",
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use polybot_domain::{BlurSize, Filter, ObjectKey, PredictionStatus};
    use polybot_storage::PredictionTable;

    use super::*;
    use crate::fake::local_backends;

    fn record(chat: ChatId, created_at: f64, kind: Action) -> PredictionRecord {
        let id = PredictionId::new();
        PredictionRecord {
            prediction_id: id,
            chat_id: chat,
            status: PredictionStatus::Pending,
            original_key: ObjectKey::original(chat, id, "jpg"),
            kind,
            result: None,
            failure: None,
            created_at,
            updated_at: created_at,
            answer_file_id: None,
        }
    }

    fn blur() -> Action {
        Action::Filter(Filter::Blur {
            size: BlurSize::new(5).expect("a valid size"),
        })
    }

    /// Every page of `query` in turn, as the ids each page held.
    async fn all_pages(
        table: &dyn PredictionTable,
        mut query: PageQuery,
    ) -> Vec<Vec<PredictionId>> {
        let mut pages = Vec::new();
        loop {
            let page = query.read(table).await.expect("a page");
            pages.push(page.records.iter().map(|r| r.prediction_id).collect());
            let Some(token) = page.next_token else { break };
            query = PageQuery::parse(
                query.chat.0,
                query.size as u32,
                &token,
                query.action.unwrap_or(""),
                query.window,
            )
            .expect("the token it gave");
            assert!(pages.len() < 100, "paging never ends");
        }
        pages
    }

    #[tokio::test]
    async fn pages_list_every_prediction_once_and_the_last_page_has_no_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let chat = ChatId(4242);
        let mut made = HashSet::new();
        for i in 0..23 {
            // Groups of three share a creation time.
            let r = record(chat, 1000.0 + f64::from(i / 3), Action::Detect);
            backends.table.create(&r).await.expect("create");
            made.insert(r.prediction_id);
        }
        for size in [1, 5, 7, 23, 100] {
            let query = PageQuery::parse(chat.0, size, "", "", TimeWindow::ALL).expect("query");
            let pages = all_pages(backends.table.as_ref(), query).await;
            let listed: Vec<_> = pages.iter().flatten().copied().collect();
            assert_eq!(listed.len(), 23, "size {size}: {pages:?}");
            assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), made);
            assert!(
                pages.iter().all(|p| !p.is_empty()),
                "size {size}: no empty page"
            );
            assert_eq!(pages.len(), 23usize.div_ceil(size as usize));
        }
    }

    #[tokio::test]
    async fn an_action_filter_pages_through_only_that_action() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backends = local_backends(dir.path()).await;
        let chat = ChatId(4343);
        let mut blurred = HashSet::new();
        for i in 0..250 {
            let kind = if i % 50 == 7 { blur() } else { Action::Detect };
            let r = record(chat, 2000.0 + f64::from(i), kind);
            backends.table.create(&r).await.expect("create");
            if kind != Action::Detect {
                blurred.insert(r.prediction_id);
            }
        }
        let query = PageQuery::parse(chat.0, 2, "", "blur", TimeWindow::ALL).expect("query");
        let pages = all_pages(backends.table.as_ref(), query).await;
        let listed: HashSet<_> = pages.iter().flatten().copied().collect();
        assert_eq!(listed, blurred);
        assert_eq!(pages.len(), 3, "5 blurs in pages of 2: {pages:?}");
    }

    #[test]
    fn a_token_only_serves_the_filters_it_was_made_for() {
        let query = PageQuery::parse(5, 10, "", "detect", TimeWindow::ALL).expect("query");
        let cursor = ListCursor {
            created_at: 1234.5,
            id: PredictionId::new(),
        };
        let token = query.token(cursor);
        let again = PageQuery::parse(5, 50, &token, "detect", TimeWindow::ALL).expect("same");
        assert_eq!(again.after, Some(cursor), "the page size may change");
        assert_eq!(
            PageQuery::parse(5, 10, &token, "blur", TimeWindow::ALL),
            Err(QueryError::OtherFilters)
        );
        assert_eq!(
            PageQuery::parse(6, 10, &token, "detect", TimeWindow::ALL),
            Err(QueryError::OtherFilters)
        );
        for bad in ["zz", "abc", "31", &token[..token.len() - 2]] {
            assert_eq!(
                PageQuery::parse(5, 10, bad, "detect", TimeWindow::ALL),
                Err(QueryError::BadToken),
                "{bad}"
            );
        }
    }

    #[test]
    fn requests_are_checked_and_sizes_coerced() {
        let all = TimeWindow::ALL;
        assert_eq!(PageQuery::parse(0, 1, "", "", all), Err(QueryError::NoChat));
        assert!(matches!(
            PageQuery::parse(1, 1, "", "sharpen", all),
            Err(QueryError::UnknownAction(_))
        ));
        let window = TimeWindow {
            from: Some(10.0),
            until: Some(10.0),
        };
        assert_eq!(
            PageQuery::parse(1, 1, "", "", window),
            Err(QueryError::EmptyWindow)
        );
        let size = |n| PageQuery::parse(1, n, "", "", all).expect("query").size;
        assert_eq!(
            (size(0), size(7), size(1000)),
            (DEFAULT_PAGE_SIZE, 7, MAX_PAGE_SIZE)
        );
        assert_eq!(
            PageQuery::parse(1, 1, "", "Salt_And_Pepper", all)
                .expect("query")
                .action,
            Some("salt_and_pepper")
        );
    }
}
