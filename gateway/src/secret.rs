//! The webhook secret: parsed once at start-up, compared as digests.
//!
//! Telegram sends the secret in `X-Telegram-Bot-Api-Secret-Token` with every
//! delivery. Anyone who can reach the load balancer can post to the webhook,
//! so the secret is what keeps fake updates out: it must be long enough not
//! to be guessed, and comparing it must not leak how much of a guess was
//! right (neither through the content nor through the length).

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest secret we accept: 32 characters of a 64-symbol alphabet is 192
/// bits, out of reach of guessing over HTTP.
pub const MIN_LEN: usize = 32;
/// Telegram's own upper bound for `secret_token`.
pub const MAX_LEN: usize = 256;

/// Why a configured secret was refused (it is never echoed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadSecret {
    #[error("it has {0} characters; at least {MIN_LEN} are needed")]
    TooShort(usize),
    #[error("it has {0} characters; Telegram allows at most {MAX_LEN}")]
    TooLong(usize),
    #[error("it may contain only A-Z, a-z, 0-9, _ and - (Telegram's rule)")]
    BadCharacter,
}

/// A webhook secret that satisfies Telegram's rules and ours.
#[derive(Clone)]
pub struct WebhookSecret {
    secret: SecretString,
    digest: [u8; 32],
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

impl WebhookSecret {
    pub fn parse(secret: SecretString) -> Result<Self, BadSecret> {
        let s = secret.expose_secret();
        let len = s.chars().count();
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(BadSecret::BadCharacter);
        }
        if len < MIN_LEN {
            return Err(BadSecret::TooShort(len));
        }
        if len > MAX_LEN {
            return Err(BadSecret::TooLong(len));
        }
        let digest = Sha256::digest(s.as_bytes()).into();
        Ok(Self { secret, digest })
    }

    /// A fresh random secret, for local runs that were given none.
    pub fn generate() -> Self {
        let raw = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        Self::parse(SecretString::from(raw)).unwrap_or_else(|_| unreachable!("64 hex digits"))
    }

    /// What to give Telegram in `setWebhook`.
    pub fn expose(&self) -> &SecretString {
        &self.secret
    }

    /// Whether `given` (the header's bytes) is the secret. Both sides are
    /// hashed to fixed-length digests first, so the comparison takes the
    /// same time whatever the length or content of the guess.
    pub fn matches(&self, given: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(given).into();
        given.ct_eq(&self.digest).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<WebhookSecret, BadSecret> {
        WebhookSecret::parse(SecretString::from(s.to_owned()))
    }

    #[test]
    fn a_short_secret_is_refused_with_its_length() {
        assert_eq!(parse("s3cret").unwrap_err(), BadSecret::TooShort(6));
        assert_eq!(parse(&"a".repeat(31)).unwrap_err(), BadSecret::TooShort(31));
        assert!(parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn characters_outside_telegrams_set_are_refused() {
        let spaced = format!("{} x", "a".repeat(40));
        assert_eq!(parse(&spaced).unwrap_err(), BadSecret::BadCharacter);
        let accented = format!("{}é", "a".repeat(40));
        assert_eq!(parse(&accented).unwrap_err(), BadSecret::BadCharacter);
        assert_eq!(
            parse(&"a".repeat(257)).unwrap_err(),
            BadSecret::TooLong(257)
        );
    }

    #[test]
    fn only_the_exact_secret_matches() {
        let s = parse("Abcdefghijklmnopqrstuvwxyz_0123456789-").expect("valid");
        assert!(s.matches(b"Abcdefghijklmnopqrstuvwxyz_0123456789-"));
        assert!(!s.matches(b"Abcdefghijklmnopqrstuvwxyz_0123456789"));
        assert!(!s.matches(b"Abcdefghijklmnopqrstuvwxyz_0123456789--"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn generated_secrets_are_valid_and_differ() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert!(a.expose().expose_secret().len() >= MIN_LEN);
        assert!(!a.matches(b.expose().expose_secret().as_bytes()));
    }

    #[test]
    fn the_debug_form_does_not_show_the_secret() {
        let s = parse(&"z".repeat(40)).expect("valid");
        assert!(!format!("{s:?}").contains("zzzz"));
    }
}
