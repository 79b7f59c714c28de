//! Acknowledge links in emails: signed, expiring and (with the store's record of used nonces)
//! single-use. A link carries what it acknowledges, when it expires and a random nonce, with an
//! HMAC-SHA256 over them, so a forged or altered link is refused before the database is asked.
//!
//! The key is derived from the webhook secrets (one per secret, so rotating the webhook secret
//! keeps links signed with the previous one working while it is still listed).

use crate::config::Secret;
use crate::signing::{hex_mac, verify_hex_mac};
use chrono::{DateTime, TimeZone, Utc};
use std::fmt;

/// How long an acknowledge link works.
pub const ACK_LINK_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// What a link acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckSubject {
    Alert(i64),
    Digest(i64),
}

impl fmt::Display for AckSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alert(id) => write!(f, "alert-{id}"),
            Self::Digest(id) => write!(f, "digest-{id}"),
        }
    }
}

impl AckSubject {
    fn parse(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once('-')?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        match kind {
            "alert" => Some(Self::Alert(id)),
            "digest" => Some(Self::Digest(id)),
            _ => None,
        }
    }
}

/// A verified link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckClaim {
    pub subject: AckSubject,
    pub nonce: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is malformed")]
    Malformed,
    #[error("this link's signature is not valid")]
    BadSignature,
    #[error("this link has expired")]
    Expired,
}

/// Signs and verifies acknowledge links.
#[derive(Clone)]
pub struct LinkSigner {
    /// The first signs; any verifies.
    keys: Vec<Secret>,
}

impl LinkSigner {
    pub fn from_webhook_secrets(secrets: &[Secret]) -> Self {
        let keys = secrets
            .iter()
            .map(|secret| Secret::new(hex_mac(secret.expose(), b"tollgate acknowledge links v1")))
            .collect();
        Self { keys }
    }

    /// A token `subject.expires.nonce.mac`, safe in a URL path.
    pub fn sign(&self, subject: AckSubject, expires: DateTime<Utc>, nonce: &str) -> String {
        let payload = format!("{subject}.{}.{nonce}", expires.timestamp());
        let key = self.keys.first().map(Secret::expose).unwrap_or_default();
        let mac = hex_mac(key, payload.as_bytes());
        format!("{payload}.{mac}")
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AckClaim, LinkError> {
        let (payload, mac) = token.rsplit_once('.').ok_or(LinkError::Malformed)?;
        let mut parts = payload.split('.');
        let (Some(subject), Some(expires), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LinkError::Malformed);
        };
        let subject = AckSubject::parse(subject).ok_or(LinkError::Malformed)?;
        let expires = expires
            .parse::<i64>()
            .ok()
            .and_then(|seconds| Utc.timestamp_opt(seconds, 0).single())
            .ok_or(LinkError::Malformed)?;
        if nonce.is_empty() || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LinkError::Malformed);
        }
        verify_hex_mac(&self.keys, mac, payload.as_bytes()).map_err(|_| LinkError::BadSignature)?;
        if now >= expires {
            return Err(LinkError::Expired);
        }
        Ok(AckClaim {
            subject,
            nonce: nonce.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> LinkSigner {
        LinkSigner::from_webhook_secrets(&[Secret::new(secret)])
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let token = signer("s").sign(AckSubject::Alert(42), now + ACK_LINK_LIFETIME, "abc123");
        let claim = signer("s").verify(&token, now).unwrap();
        assert_eq!(claim.subject, AckSubject::Alert(42));
        assert_eq!(claim.nonce, "abc123");
        assert_eq!(
            signer("s").verify(&token, now + ACK_LINK_LIFETIME),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn altered_or_foreign_links_are_refused() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let later = now + chrono::Duration::hours(1);
        let token = signer("s").sign(AckSubject::Digest(7), later, "n1");
        assert_eq!(
            signer("other").verify(&token, now),
            Err(LinkError::BadSignature)
        );
        let tampered = token.replacen("digest-7", "digest-8", 1);
        assert_eq!(
            signer("s").verify(&tampered, now),
            Err(LinkError::BadSignature)
        );
        for bad in [
            "",
            "x",
            "alert-1.2.n",
            "alert-0.99.n.ff",
            "alert-1.x.n.ff",
            "a.b.c.d.e",
        ] {
            assert_eq!(
                signer("s").verify(bad, now),
                Err(LinkError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_signed_under_a_rotated_secret_still_verify() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
        let token = signer("old").sign(AckSubject::Alert(1), now + ACK_LINK_LIFETIME, "n");
        let both = LinkSigner::from_webhook_secrets(&[Secret::new("new"), Secret::new("old")]);
        assert!(both.verify(&token, now).is_ok());
    }
}
