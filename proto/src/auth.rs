//! Who may call `polybot.v1.Results`: bearer tokens in the `authorization`
//! metadata (`authorization: Bearer <token>`).
//!
//! Two credentials, two roles: detectors hold the *results token* and may
//! only call `ReportResult`; operators hold the *operator token* and may only
//! call the read methods (`GetPrediction`, `ListPredictions`). The server's
//! [`Authenticator`] interceptor compares SHA-256 digests of the presented
//! token with the expected ones in constant time, so neither the token nor
//! its length leaks through timing, and puts the caller's [`Role`] into the
//! request's extensions; each method then calls [`require`]. No or an
//! unknown token is `UNAUTHENTICATED`; a known token used for the other
//! role's method is `PERMISSION_DENIED`.
//!
//! Rotating the results token without refused reports: give the gateways
//! the new token with the old one as the *previous* results token (both are
//! accepted), then roll the detectors onto the new one, then drop the
//! previous one. `polybot_results_previous_token_total` shows when no
//! detector uses the old token any more.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::{Request, Status};

/// The metadata key the token travels in.
pub const AUTHORIZATION: &str = "authorization";

/// Shortest token accepted from configuration.
pub const MIN_TOKEN_LEN: usize = 32;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A detector: reports finished jobs.
    Reporter,
    /// A person or tool reading predictions.
    Operator,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reporter => "results (detector)",
            Self::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "{setting} must be at least {MIN_TOKEN_LEN} characters of visible ASCII without spaces (got {len} characters)"
    )]
    BadToken { setting: &'static str, len: usize },
    #[error("the operator token must differ from the results token")]
    SameTokens,
}

/// Checks that a configured token can travel in gRPC metadata and is long
/// enough not to be guessed. `setting` names where it came from.
pub fn validate_token(setting: &'static str, token: &SecretString) -> Result<(), CredentialError> {
    let t = token.expose_secret();
    let ok = t.len() >= MIN_TOKEN_LEN && t.len() <= 4096 && t.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CredentialError::BadToken {
            setting,
            len: t.chars().count(),
        })
    }
}

/// A secret from the environment variable `name` (empty counts as unset).
///
/// Secrets are never clap flags (the process list would show them): the
/// services read them with this, from a file, or from Secrets Manager.
pub fn env_secret(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(SecretString::from)
}

/// A secret file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}={path}: {reason}")]
pub struct SecretFileError {
    pub setting: &'static str,
    pub path: std::path::PathBuf,
    pub reason: String,
    #[source]
    pub source: Option<std::io::Error>,
}

/// A secret from a file (e.g. a mounted Kubernetes or Docker secret); the
/// surrounding whitespace and final newline are dropped.
pub fn read_secret_file(
    setting: &'static str,
    path: &std::path::Path,
) -> Result<SecretString, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| SecretFileError {
        setting,
        path: path.to_owned(),
        reason: format!("cannot read the file: {e}"),
        source: Some(e),
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SecretFileError {
            setting,
            path: path.to_owned(),
            reason: "the file is empty".into(),
            source: None,
        });
    }
    Ok(SecretString::from(value.to_owned()))
}

/// A fresh random token (256 bits from the OS's generator, as hex).
pub fn generate_token() -> SecretString {
    let mut bytes = [0u8; 32];
    // uuid's v4 generator reads the OS's CSPRNG; two of them give 244
    // random bits, topped up to 256 by hashing them together.
    let seed = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    SecretString::from(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tokens the gateway accepts.
#[derive(Clone)]
pub struct ResultsCredentials {
    /// Detectors' token, for `ReportResult`.
    pub results: SecretString,
    /// Operators' token, for the read methods; `None` closes them to everyone.
    pub operator: Option<SecretString>,
    /// The results token being rotated out, still accepted for
    /// `ReportResult` while the detectors move to the new one.
    pub previous_results: Option<SecretString>,
}

impl std::fmt::Debug for ResultsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsCredentials")
            .field("results", &"[redacted]")
            .field("operator", &self.operator.as_ref().map(|_| "[redacted]"))
            .field(
                "previous_results",
                &self.previous_results.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl ResultsCredentials {
    /// Random tokens for both roles: what local and all-in-one runs use, the
    /// tokens being handed to the in-process detector and the operator.
    pub fn generate() -> Self {
        Self {
            results: generate_token(),
            operator: Some(generate_token()),
            previous_results: None,
        }
    }

    /// Checks every token (see [`validate_token`]) and that the operator's
    /// differs from the detectors' (current and previous).
    pub fn validate(&self) -> Result<(), CredentialError> {
        validate_token("the results token (POLYBOT_RESULTS_TOKEN)", &self.results)?;
        if let Some(previous) = &self.previous_results {
            validate_token(
                "the previous results token (POLYBOT_RESULTS_TOKEN_PREVIOUS)",
                previous,
            )?;
        }
        if let Some(op) = &self.operator {
            validate_token("the operator token (POLYBOT_OPERATOR_TOKEN)", op)?;
            let reporters = std::iter::once(&self.results).chain(&self.previous_results);
            for reporter in reporters {
                if bool::from(digest(op).ct_eq(&digest(reporter))) {
                    return Err(CredentialError::SameTokens);
                }
            }
        }
        Ok(())
    }

    /// The server-side check for these credentials.
    pub fn authenticator(&self) -> Authenticator {
        Authenticator {
            results: digest(&self.results),
            previous_results: self.previous_results.as_ref().map(digest),
            operator: self.operator.as_ref().map(digest),
            on_previous: None,
        }
    }
}

fn digest(token: &SecretString) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

/// The server's interceptor: authenticates every call and records the role.
#[derive(Clone)]
pub struct Authenticator {
    results: [u8; 32],
    previous_results: Option<[u8; 32]>,
    operator: Option<[u8; 32]>,
    /// Told of each call made with the previous results token.
    on_previous: Option<fn()>,
}

impl Authenticator {
    /// Calls `f` for each call made with the previous results token (the
    /// gateway counts them, so operators see when the rotation is done).
    pub fn on_previous_token(mut self, f: fn()) -> Self {
        self.on_previous = Some(f);
        self
    }

    /// The caller's role, from its `authorization` metadata.
    pub fn role(&self, metadata: &MetadataMap) -> Result<Role, Status> {
        let Some(value) = metadata.get(AUTHORIZATION) else {
            return Err(Status::unauthenticated(
                "no credentials: send `authorization: Bearer <token>`",
            ));
        };
        let bytes = value.as_bytes();
        let token = match bytes.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
            _ => {
                return Err(Status::unauthenticated(
                    "the authorization metadata must be `Bearer <token>`",
                ));
            }
        };
        let given: [u8; 32] = Sha256::digest(token).into();
        let is_results = given.ct_eq(&self.results);
        let is_previous = match &self.previous_results {
            Some(previous) => given.ct_eq(previous),
            None => Choice::from(0),
        };
        let is_operator = match &self.operator {
            Some(op) => given.ct_eq(op),
            None => Choice::from(0),
        };
        if bool::from(is_operator) {
            Ok(Role::Operator)
        } else if bool::from(is_results) {
            Ok(Role::Reporter)
        } else if bool::from(is_previous) {
            if let Some(f) = self.on_previous {
                f();
            }
            Ok(Role::Reporter)
        } else {
            Err(Status::unauthenticated("invalid credentials"))
        }
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let role = self.role(request.metadata())?;
        request.extensions_mut().insert(role);
        Ok(request)
    }
}

/// Refuses the call unless the interceptor authenticated it as `role`.
pub fn require<T>(request: &Request<T>, role: Role) -> Result<(), Status> {
    match request.extensions().get::<Role>() {
        Some(r) if *r == role => Ok(()),
        Some(r) => Err(Status::permission_denied(format!(
            "this method needs the {} token; the caller holds the {} token",
            role.as_str(),
            r.as_str()
        ))),
        None => Err(Status::unauthenticated("no credentials")),
    }
}

/// The client side: `Bearer <token>` as a sensitive metadata value (never
/// logged by tonic or hyper).
pub fn bearer(token: &SecretString) -> Result<AsciiMetadataValue, CredentialError> {
    let mut value = AsciiMetadataValue::try_from(format!("Bearer {}", token.expose_secret()))
        .map_err(|_| CredentialError::BadToken {
            setting: "the results token",
            len: token.expose_secret().chars().count(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(a) = auth {
            r.metadata_mut()
                .insert(AUTHORIZATION, a.parse().expect("ascii"));
        }
        r
    }

    #[test]
    fn each_token_authenticates_as_its_own_role_and_nothing_else_does() {
        let creds = ResultsCredentials::generate();
        creds.validate().expect("generated tokens are valid");
        let auth = creds.authenticator();
        let results = format!("Bearer {}", creds.results.expose_secret());
        let operator = format!(
            "bearer {}",
            creds.operator.as_ref().expect("operator").expose_secret()
        );
        assert_eq!(
            auth.role(request(Some(&results)).metadata()).ok(),
            Some(Role::Reporter)
        );
        assert_eq!(
            auth.role(request(Some(&operator)).metadata()).ok(),
            Some(Role::Operator)
        );
        for bad in [
            None,
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic abc"),
            Some(creds.results.expose_secret()),
            Some("Bearer 0000000000000000000000000000000000000000"),
        ] {
            let status = auth.role(request(bad).metadata()).expect_err("refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn without_an_operator_token_no_caller_is_an_operator() {
        let creds = ResultsCredentials {
            results: generate_token(),
            operator: None,
            previous_results: None,
        };
        let auth = creds.authenticator();
        let r = request(Some(&format!("Bearer {}", creds.results.expose_secret())));
        assert_eq!(auth.role(r.metadata()).ok(), Some(Role::Reporter));
    }

    #[test]
    fn require_tells_a_missing_login_from_the_wrong_role() {
        let mut r = request(None);
        assert_eq!(
            require(&r, Role::Operator).expect_err("no role").code(),
            tonic::Code::Unauthenticated
        );
        r.extensions_mut().insert(Role::Reporter);
        assert_eq!(
            require(&r, Role::Operator).expect_err("wrong role").code(),
            tonic::Code::PermissionDenied
        );
        assert!(require(&r, Role::Reporter).is_ok());
    }

    #[test]
    fn short_spaced_or_shared_tokens_are_refused() {
        let short = SecretString::from("tooshort".to_owned());
        assert!(matches!(
            validate_token("X", &short),
            Err(CredentialError::BadToken { len: 8, .. })
        ));
        let spaced = SecretString::from(format!("{} {}", "a".repeat(20), "b".repeat(20)));
        assert!(validate_token("X", &spaced).is_err());
        let same = generate_token();
        let creds = ResultsCredentials {
            results: same.clone(),
            operator: Some(same.clone()),
            previous_results: None,
        };
        assert_eq!(creds.validate(), Err(CredentialError::SameTokens));
        let creds = ResultsCredentials {
            results: generate_token(),
            operator: Some(same.clone()),
            previous_results: Some(same),
        };
        assert_eq!(
            creds.validate(),
            Err(CredentialError::SameTokens),
            "nor the previous one"
        );
    }

    #[test]
    fn during_a_rotation_both_results_tokens_report_and_the_old_one_is_counted() {
        static OLD_USED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let (new, old) = (generate_token(), generate_token());
        let creds = ResultsCredentials {
            results: new.clone(),
            operator: Some(generate_token()),
            previous_results: Some(old.clone()),
        };
        creds.validate().expect("valid");
        let auth = creds.authenticator().on_previous_token(|| {
            OLD_USED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let bearer = |t: &SecretString| request(Some(&format!("Bearer {}", t.expose_secret())));
        assert_eq!(
            auth.role(bearer(&new).metadata()).ok(),
            Some(Role::Reporter)
        );
        assert_eq!(OLD_USED.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(
            auth.role(bearer(&old).metadata()).ok(),
            Some(Role::Reporter)
        );
        assert_eq!(OLD_USED.load(std::sync::atomic::Ordering::SeqCst), 1);
        let other = generate_token();
        assert_eq!(
            auth.role(bearer(&other).metadata())
                .expect_err("refused")
                .code(),
            tonic::Code::Unauthenticated
        );
    }

    #[test]
    fn secret_files_are_trimmed_and_empty_ones_refused() {
        let dir = std::env::temp_dir().join(format!("polybot-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("token");
        std::fs::write(&file, "  abc\n").expect("write");
        let s = read_secret_file("X_FILE", &file).expect("read");
        assert_eq!(s.expose_secret(), "abc");
        std::fs::write(&file, "\n").expect("write");
        let e = read_secret_file("X_FILE", &file).expect_err("empty");
        assert!(
            e.to_string().contains("X_FILE") && e.to_string().contains("empty"),
            "{e}"
        );
        let e = read_secret_file("X_FILE", &dir.join("missing")).expect_err("missing");
        assert!(e.source.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn generated_tokens_differ_and_are_long_enough() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 64);
        assert!(bearer(&a).expect("ascii").is_sensitive());
    }
}
