//! What a failed send or download means to the gateway. Error classes
//! follow the real API (see [`crate::botapi`]): network errors, 5xx, 429
//! and a refused token (401/404, [`crate::token`]) are
//! [`MessengerError::Unavailable`] (retry later), any other 4xx is
//! [`MessengerError::Rejected`] (final), and a refusal of the file itself
//! is [`MessengerError::MediaRejected`] (another form may get through).

use polybot_domain::BoxError;

use crate::botapi::{BotApiError, ErrorClass, MAX_DOWNLOAD};

#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// Telegram could not be reached or failed for now: retry later.
    #[error("Telegram is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Telegram refuses the bot's token (401/404: revoked or wrong): the
    /// whole bot is out until it is fixed, so retry later, and never spend
    /// a request's retry budget on it.
    #[error("Telegram refuses the bot token: {0}")]
    TokenRefused(#[source] BotApiError),
    /// Telegram refused for good (the user blocked the bot, the chat is gone,
    /// a bad file id…).
    #[error("Telegram refused: {0}")]
    Rejected(#[source] BoxError),
    #[error("the file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    /// Telegram refused a photo we sent for what it is (its dimensions,
    /// size or format), not for where it went: another form (a document,
    /// text) can still get through. Permanent: sending it again cannot help.
    #[error("Telegram refused the file: {0}")]
    MediaRejected(#[source] BoxError),
}

impl MessengerError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::TokenRefused(_))
    }

    /// A failure of the whole bot rather than of this request (a refused
    /// token): retried for as long as it lasts.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::TokenRefused(_))
    }

    /// Short label for spans and metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::TokenRefused(_) => "token_refused",
            Self::Rejected(_) => "rejected",
            Self::TooLarge { .. } => "too_large",
            Self::MediaRejected(_) => "media_rejected",
        }
    }
}

/// Telegram's answers that refuse an upload for what it is. The texts are
/// the Bot API's own (`Bad Request: PHOTO_INVALID_DIMENSIONS`, …); a 413 is
/// an upload over the size limit.
const MEDIA_REFUSALS: [&str; 5] = [
    "PHOTO_INVALID_DIMENSIONS",
    "IMAGE_PROCESS_FAILED",
    "PHOTO_SAVE_FILE_INVALID",
    "PHOTO_EXT_INVALID",
    "Request Entity Too Large",
];

/// Telegram's error classes as the messenger's.
pub fn classify(e: BotApiError) -> MessengerError {
    if e.is_token_refused() {
        return MessengerError::TokenRefused(e);
    }
    let media_refused = matches!(e, BotApiError::Api { code: 413, .. })
        || e.description()
            .is_some_and(|d| MEDIA_REFUSALS.iter().any(|r| d.contains(r)));
    match e.class() {
        ErrorClass::Permanent if media_refused => MessengerError::MediaRejected(e.into()),
        ErrorClass::Permanent
            if e.description()
                .is_some_and(|d| d.contains("file is too big")) =>
        {
            MessengerError::TooLarge {
                size: 0,
                limit: MAX_DOWNLOAD,
            }
        }
        ErrorClass::Permanent => MessengerError::Rejected(e.into()),
        ErrorClass::Retryable | ErrorClass::RateLimited(_) => MessengerError::Unavailable(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn api(code: u16, description: &str, retry_after: Option<u64>) -> BotApiError {
        BotApiError::Api {
            method: "sendPhoto",
            code,
            description: description.to_owned(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    /// Telegram's own answers, and what each must mean to the gateway:
    /// a refused photo can go another way, other 4xx are final, and rate
    /// limits, 5xx and network failures are retried.
    #[test]
    fn telegram_errors_are_classified_from_the_real_api_texts() {
        let network = BotApiError::Network {
            method: "sendPhoto",
            message: "connection reset".into(),
        };
        let cases = [
            (
                api(400, "Bad Request: PHOTO_INVALID_DIMENSIONS", None),
                "media_rejected",
            ),
            (
                api(400, "Bad Request: IMAGE_PROCESS_FAILED", None),
                "media_rejected",
            ),
            (api(413, "Request Entity Too Large", None), "media_rejected"),
            (
                api(400, "Bad Request: message is too long", None),
                "rejected",
            ),
            (api(400, "Bad Request: chat not found", None), "rejected"),
            (
                api(403, "Forbidden: bot was blocked by the user", None),
                "rejected",
            ),
            (
                api(400, "Bad Request: message to delete not found", None),
                "rejected",
            ),
            (
                api(429, "Too Many Requests: retry after 5", Some(5)),
                "unavailable",
            ),
            (api(500, "Internal Server Error", None), "unavailable"),
            // A revoked or wrong token: an outage of the whole bot, not a
            // refusal by this user.
            (api(401, "Unauthorized", None), "token_refused"),
            (api(404, "Not Found", None), "token_refused"),
            (api(502, "Bad Gateway", None), "unavailable"),
            (network, "unavailable"),
        ];
        for (error, kind) in cases {
            let shown = error.to_string();
            let classified = classify(error);
            assert_eq!(classified.kind(), kind, "{shown}");
            assert_eq!(
                classified.is_retryable(),
                kind == "unavailable" || kind == "token_refused",
                "{shown}"
            );
        }
    }

    #[test]
    fn a_download_over_the_bot_api_limit_is_too_large() {
        let classified = classify(api(400, "Bad Request: file is too big", None));
        assert!(
            matches!(classified, MessengerError::TooLarge { .. }),
            "{classified:?}"
        );
    }
}
