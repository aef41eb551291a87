//! Whether Telegram accepts the bot's token. A revoked or wrong token makes
//! every Bot API method answer 401 (Unauthorized) or 404 (Not Found): that
//! is an outage of the whole bot, not a refusal by one user, so such errors
//! are retried ([`crate::ErrorClass::Retryable`]) and nothing is dropped.
//! While they last, the readiness component [`TOKEN_COMPONENT`] is not
//! ready and `polybot_telegram_token_refused_total` counts them; the first
//! accepted call ends the outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use polybot_telemetry::metrics::Counter;
use polybot_telemetry::tasks::Components;

/// The readiness component a token outage turns not ready.
pub const TOKEN_COMPONENT: &str = "telegram_token";

static REFUSED: LazyLock<Counter> = LazyLock::new(|| {
    Counter::new(
        "polybot_telegram_token_refused_total",
        "polybot.telegram.token_refused",
        "Bot API calls refused for the bot token (401 or 404: revoked or wrong), by method",
        &["method"],
    )
});

/// Shared by every clone of the Bot API client.
#[derive(Clone, Default)]
pub struct TokenWatch {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    refused: AtomicBool,
    components: OnceLock<Components>,
}

impl TokenWatch {
    /// Reports the token's state to `components` (a service's readiness)
    /// from now on.
    pub fn report_to(&self, components: Components) {
        components.set(TOKEN_COMPONENT, !self.is_refused());
        // A second service sharing the client keeps the first's report.
        let _ = self.inner.components.set(components);
    }

    /// Whether the latest answer refused the token.
    pub fn is_refused(&self) -> bool {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// A call to `method` was refused for the token.
    pub(crate) fn refused(&self, method: &'static str) {
        REFUSED.inc(&[method]);
        if !self.inner.refused.swap(true, Ordering::SeqCst) {
            tracing::error!(
                method,
                "Telegram refuses the bot token (401/404: revoked or wrong?); answers and \
                 photos wait until it is accepted again, and the service is not ready"
            );
            self.publish();
        }
    }

    /// A call was answered (even with another error): the token works.
    pub(crate) fn accepted(&self) {
        if self.inner.refused.swap(false, Ordering::SeqCst) {
            tracing::info!("Telegram accepts the bot token again");
            self.publish();
        }
    }

    /// Publishes the current state (not the transition's: of two racing
    /// transitions, the later state wins).
    fn publish(&self) {
        if let Some(components) = self.inner.components.get() {
            components.set(TOKEN_COMPONENT, !self.is_refused());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_makes_the_component_not_ready_until_a_call_is_accepted() {
        let components = Components::default();
        let watch = TokenWatch::default();
        watch.report_to(components.clone());
        assert!(components.ok(TOKEN_COMPONENT));
        watch.refused("sendPhoto");
        assert!(watch.is_refused());
        assert!(!components.ok(TOKEN_COMPONENT));
        assert_eq!(components.failing(), vec![TOKEN_COMPONENT]);
        watch.refused("getUpdates");
        watch.accepted();
        assert!(components.ok(TOKEN_COMPONENT));
        assert!(!watch.is_refused());
    }
}
