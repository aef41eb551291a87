//! The webhook's certificate, as `setWebhook` needs it: Telegram reaches a
//! webhook served with a self-signed certificate only when that certificate
//! was uploaded with `setWebhook` (its `certificate` part), since no public
//! authority vouches for it. A certificate a public authority issued is not
//! uploaded: Telegram checks it the usual way.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use x509_parser::pem::Pem;

/// Why the served certificate could not be read for `setWebhook`.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("POLYBOT_TLS_CERT {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("POLYBOT_TLS_CERT {path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("POLYBOT_TLS_CERT {path}: the certificate does not parse")]
    Unparsable {
        path: PathBuf,
        #[source]
        source: x509_parser::nom::Err<x509_parser::error::X509Error>,
    },
}

/// The PEM to upload with `setWebhook` when the certificate at `path` (the
/// chain the gateway serves, leaf first) is self-signed; `None` when an
/// authority issued it.
pub fn to_upload(path: &Path) -> Result<Option<Bytes>, CertificateError> {
    let pem = std::fs::read(path).map_err(|source| CertificateError::Read {
        path: path.to_owned(),
        source,
    })?;
    let leaf = Pem::iter_from_buffer(&pem)
        .next()
        .and_then(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .ok_or_else(|| CertificateError::NoCertificate {
            path: path.to_owned(),
        })?;
    let cert = leaf
        .parse_x509()
        .map_err(|source| CertificateError::Unparsable {
            path: path.to_owned(),
            source,
        })?;
    // Self-signed: it names itself as its issuer. (Telegram's own guide
    // asks for exactly these certificates to be uploaded.)
    let self_signed = cert.issuer() == cert.subject();
    Ok(self_signed.then(|| Bytes::from(pem)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_uploaded_as_served() {
        let cert = rcgen::generate_simple_self_signed(vec!["bot.example".into()]).expect("cert");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, cert.cert.pem()).expect("write");
        let upload = to_upload(&path).expect("readable").expect("self-signed");
        assert_eq!(upload, Bytes::from(cert.cert.pem()));
    }

    #[test]
    fn a_certificate_an_authority_issued_is_not_uploaded() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Authority");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["bot.example".to_owned()]).expect("params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bot.example");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("chain.pem");
        std::fs::write(&path, format!("{}{}", leaf.pem(), ca.pem())).expect("write");
        assert!(to_upload(&path).expect("readable").is_none());
    }

    #[test]
    fn a_file_without_a_certificate_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "not a certificate").expect("write");
        let e = to_upload(&path).expect_err("refused");
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
