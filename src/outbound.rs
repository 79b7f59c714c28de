//! Outbound connections: which certificate authorities every outbound client trusts, and the one
//! way HTTP clients are built (GitHub and its OAuth, Slack, PagerDuty, `tollgate setup`).
//!
//! A GitHub Enterprise Server behind an internal certificate authority needs that authority
//! trusted: `GITHUB_CA_BUNDLE` names a PEM file whose certificates are trusted *in addition to*
//! the system's roots, by every HTTP client and by SMTP over TLS. Proxies come from
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, which reqwest reads itself.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// The variable naming the PEM file of extra root certificates.
pub const CA_BUNDLE_VARIABLE: &str = "GITHUB_CA_BUNDLE";

/// What a TLS error message gets appended, so that the fix is named where the failure shows.
pub const CA_BUNDLE_HINT: &str = "if the server's certificate comes from an internal certificate authority, set GITHUB_CA_BUNDLE to a PEM file with that authority's root certificate";

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    Empty { path: String },
    #[error("{path}: certificate {index} is not valid PEM: {message}")]
    Pem {
        path: String,
        index: usize,
        message: String,
    },
}

/// The root certificates trusted beyond the system's. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    extra_roots: Arc<Vec<CertificateDer<'static>>>,
    /// The same certificates, as reqwest takes them.
    http_roots: Arc<Vec<reqwest::Certificate>>,
}

impl Trust {
    /// Only the system's roots.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system's roots and every certificate of a PEM file (other PEM blocks, such as keys,
    /// are skipped).
    pub fn with_bundle(path: &Path) -> Result<Self, TrustError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| TrustError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let mut roots = Vec::new();
        let mut http_roots = Vec::new();
        for (index, certificate) in CertificateDer::pem_slice_iter(&pem).enumerate() {
            let invalid = |message: String| TrustError::Pem {
                path: shown.clone(),
                index: index + 1,
                message,
            };
            let certificate = certificate.map_err(|e| invalid(e.to_string()))?;
            http_roots.push(
                reqwest::Certificate::from_der(&certificate).map_err(|e| invalid(e.to_string()))?,
            );
            roots.push(certificate);
        }
        if roots.is_empty() {
            return Err(TrustError::Empty { path: shown });
        }
        Ok(Self {
            extra_roots: Arc::new(roots),
            http_roots: Arc::new(http_roots),
        })
    }

    /// How many certificates the bundle added.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots.len()
    }

    /// A reqwest builder that trusts these roots (and the system's) and uses the environment's
    /// proxies. Every HTTP client of the app starts here.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        self.http_roots.iter().cloned().fold(
            reqwest::Client::builder().use_rustls_tls(),
            |builder, root| builder.add_root_certificate(root),
        )
    }

    /// TLS parameters for SMTP to `host`, trusting these roots (and the system's).
    pub fn smtp_tls(
        &self,
        host: &str,
    ) -> Result<lettre::transport::smtp::client::TlsParameters, lettre::transport::smtp::Error>
    {
        use lettre::transport::smtp::client::{Certificate, TlsParameters};
        let mut builder = TlsParameters::builder(host.to_owned());
        for root in self.extra_roots.iter() {
            builder = builder.add_root_certificate(Certificate::from_der(root.to_vec())?);
        }
        builder.build()
    }
}

/// `message`, with [`CA_BUNDLE_HINT`] appended when it is about a certificate the client did
/// not trust.
pub fn with_tls_hint(message: String) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!("{message} ({CA_BUNDLE_HINT})")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "tollgate-outbound-{name}-{}.pem",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        path
    }

    const CA: &str = include_str!("../tests/fixtures/tls/ca.pem");

    #[test]
    fn a_bundle_adds_its_certificates_and_skips_other_blocks() {
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let path = temp_file("two", &format!("{CA}{key}{CA}"));
        assert_eq!(Trust::with_bundle(&path).unwrap().extra_roots(), 2);
        assert_eq!(Trust::system().extra_roots(), 0);
    }

    #[test]
    fn unusable_bundles_are_errors_naming_the_file() {
        let empty = temp_file("empty", "no certificates here\n");
        assert!(matches!(
            Trust::with_bundle(&empty),
            Err(TrustError::Empty { path }) if path == empty.display().to_string()
        ));
        let missing = Path::new("/nonexistent/ca.pem");
        assert!(matches!(
            Trust::with_bundle(missing),
            Err(TrustError::Read { path, .. }) if path == "/nonexistent/ca.pem"
        ));
        let broken = temp_file(
            "broken",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        );
        assert!(matches!(
            Trust::with_bundle(&broken),
            Err(TrustError::Pem { index: 1, .. })
        ));
    }

    #[test]
    fn tls_errors_name_the_variable() {
        let hinted = with_tls_hint("invalid peer certificate: UnknownIssuer".to_owned());
        assert!(hinted.contains(CA_BUNDLE_VARIABLE), "{hinted}");
        assert_eq!(
            with_tls_hint("connection refused".to_owned()),
            "connection refused"
        );
    }
}
