//! HMAC-SHA256 signatures in hex, as both GitHub (`X-Hub-Signature-256`) and Slack
//! (`X-Slack-Signature`) send them; each caller adds its own prefix and base string.

use crate::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a hex MAC does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacError {
    /// Not hex.
    Malformed,
    /// No secret produces it.
    Mismatch,
}

/// Checks `hex_mac` against `message` under each of `secrets`, in constant time per secret.
pub fn verify_hex_mac(secrets: &[Secret], hex_mac: &str, message: &[u8]) -> Result<(), MacError> {
    let expected = hex::decode(hex_mac).map_err(|_| MacError::Malformed)?;
    let matches = secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(&expected).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(MacError::Mismatch)
    }
}

/// The hex HMAC-SHA256 of `message` under `secret`.
pub fn hex_mac(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}
