//! Signed cookies and random secrets. A cookie's value is `VALUE.MAC`, the MAC being
//! HMAC-SHA256 under `SESSION_KEY` of the cookie's name and value, so a value cannot be forged
//! nor moved from one cookie to another.

use crate::config::SessionKey;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "tollgate_session";
pub const STATE_COOKIE: &str = "tollgate_oauth_state";

/// 32 random bytes, base64url: session ids, OAuth states, CSRF tokens, API tokens.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a session id or API token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn mac(key: &SessionKey, name: &str, value: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(name.as_bytes());
    mac.update(b"=");
    mac.update(value.as_bytes());
    mac
}

pub fn sign(key: &SessionKey, name: &str, value: &str) -> String {
    let tag = mac(key, name, value).finalize().into_bytes();
    format!("{value}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The value of a signed cookie, or `None` when it was not signed with this key for this name.
pub fn verify(key: &SessionKey, name: &str, signed: &str) -> Option<String> {
    let (value, tag) = signed.rsplit_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(key, name, value).verify_slice(&tag).ok()?;
    Some(value.to_owned())
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn find<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Lax always (Lax lets GitHub's redirect back to
/// the callback carry the state cookie), Secure when the app is served over https.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// Constant-time comparison of two secrets (CSRF tokens, OAuth states).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::new(vec![byte; 64]).unwrap()
    }

    #[test]
    fn a_signed_value_verifies_only_under_its_key_and_name() {
        let signed = sign(&key(1), SESSION_COOKIE, "abc");
        assert_eq!(
            verify(&key(1), SESSION_COOKIE, &signed).as_deref(),
            Some("abc")
        );
        assert_eq!(verify(&key(2), SESSION_COOKIE, &signed), None);
        assert_eq!(verify(&key(1), STATE_COOKIE, &signed), None);
        assert_eq!(verify(&key(1), SESSION_COOKIE, "abd.whatever"), None);
        assert_eq!(verify(&key(1), SESSION_COOKIE, "no-dot"), None);
        let tampered = signed.replacen("abc", "abd", 1);
        assert_eq!(verify(&key(1), SESSION_COOKIE, &tampered), None);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let header = "a=1; tollgate_session=xyz.tag; b=2";
        assert_eq!(find(header, SESSION_COOKIE), Some("xyz.tag"));
        assert_eq!(find(header, "c"), None);
    }

    #[test]
    fn set_cookie_is_http_only_and_lax_and_secure_on_https() {
        assert_eq!(
            set_cookie("n", "v", "/", 60, true),
            "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!set_cookie("n", "v", "/", 60, false).contains("Secure"));
    }

    #[test]
    fn random_tokens_differ_and_hashes_are_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
    }
}
