//! App authentication: the app's private key and the JWT octocrab signs with it.
//!
//! octocrab signs the app JWT itself (RS256, `iss` = app id, issued 60 s in the past, expiring
//! 9 minutes ahead) and exchanges it for installation tokens, which it caches per installation
//! client and renews 30 s before they expire. This module only turns the configured PEM into the
//! key octocrab wants, with errors that never echo the key.

use super::GithubError;
use octocrab::jsonwebtoken::EncodingKey;
use std::fmt;

/// A GitHub App's identity: its numeric id and RSA private key.
#[derive(Clone)]
pub struct AppCredentials {
    pub app_id: u64,
    pub(crate) key: EncodingKey,
}

impl AppCredentials {
    /// Parses a PEM private key (PKCS#1 `RSA PRIVATE KEY`, as GitHub hands it out, or PKCS#8).
    pub fn from_pem(app_id: u64, private_key_pem: &str) -> Result<Self, GithubError> {
        if app_id == 0 {
            return Err(GithubError::Config {
                message: "the GitHub App id must be a positive number".into(),
            });
        }
        // octocrab's re-export: the key must come from the jsonwebtoken major octocrab uses.
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|error| {
            GithubError::Config {
                message: format!(
                    "the GitHub App private key is not an RSA key in PEM format ({error})"
                ),
            }
        })?;
        Ok(Self { app_id, key })
    }

    /// A freshly signed app JWT, as octocrab would send it. For requests octocrab does not make
    /// itself; never log it.
    pub fn jwt(&self) -> Result<String, GithubError> {
        octocrab::auth::create_jwt(octocrab::models::AppId(self.app_id), &self.key).map_err(
            |error| GithubError::Config {
                message: format!("cannot sign the app JWT: {error}"),
            },
        )
    }
}

impl fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use octocrab::jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    const KEY: &str = include_str!("../../tests/fixtures/test-app-key.pem");

    #[derive(serde::Deserialize)]
    struct Claims {
        iss: u64,
        iat: u64,
        exp: u64,
    }

    #[test]
    fn jwt_is_rs256_and_short_lived() {
        let credentials = AppCredentials::from_pem(4242, KEY).unwrap();
        let jwt = credentials.jwt().unwrap();
        assert_eq!(decode_header(&jwt).unwrap().alg, Algorithm::RS256);

        let private = rsa::RsaPrivateKey::from_pkcs1_pem(KEY).unwrap();
        let public = DecodingKey::from_rsa_raw_components(
            &private.n().to_bytes_be(),
            &private.e().to_bytes_be(),
        );
        let claims = decode::<Claims>(&jwt, &public, &Validation::new(Algorithm::RS256))
            .unwrap()
            .claims;
        assert_eq!(claims.iss, 4242);
        assert!(
            claims.exp - claims.iat <= 600,
            "GitHub refuses JWTs living over 10 minutes"
        );
    }

    #[test]
    fn bad_key_is_a_config_error_without_the_key() {
        let secret = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END RSA PRIVATE KEY-----\n";
        let error = AppCredentials::from_pem(1, secret).unwrap_err();
        assert!(matches!(error, GithubError::Config { .. }));
        assert!(!error.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let credentials = AppCredentials::from_pem(7, KEY).unwrap();
        assert_eq!(
            format!("{credentials:?}"),
            "AppCredentials { app_id: 7, .. }"
        );
    }

    #[test]
    fn app_id_zero_is_refused() {
        assert!(AppCredentials::from_pem(0, KEY).is_err());
    }
}
