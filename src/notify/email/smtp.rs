//! The SMTP side: `SMTP_URL` parsed into a target, and a mailer that sends one message with a
//! Message-ID chosen by the caller (kept across retries).

use super::RenderedEmail;
use crate::outbound::Trust;
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://` (default): STARTTLS, required.
    StartTls,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the relay offers it.
    Opportunistic,
    /// `smtp://…?tls=none`: plain text, for a relay on the same host or network.
    None,
}

/// Where mail goes, from `SMTP_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SmtpTarget {
    /// Parses `smtp://[user:pass@]host[:port][?tls=required|opportunistic|none]` or
    /// `smtps://[user:pass@]host[:port]`; the error says what is wrong, never the password.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| format!("not a URL ({e}); expected smtp://user:pass@host:587"))?;
        let mut tls = match url.scheme() {
            "smtp" => TlsMode::StartTls,
            "smtps" => TlsMode::Implicit,
            other => return Err(format!("unknown scheme {other:?}; expected smtp or smtps")),
        };
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref(), tls) {
                ("tls", "required", TlsMode::StartTls) => {}
                ("tls", "opportunistic", TlsMode::StartTls) => tls = TlsMode::Opportunistic,
                ("tls", "none", TlsMode::StartTls) => tls = TlsMode::None,
                ("tls", _, TlsMode::Implicit) => {
                    return Err("smtps:// always uses TLS; drop the tls parameter".to_owned());
                }
                ("tls", other, _) => {
                    return Err(format!(
                        "tls={other} is not one of required, opportunistic, none"
                    ));
                }
                (other, _, _) => return Err(format!("unknown parameter {other:?}")),
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(match tls {
            TlsMode::Implicit => 465,
            _ => 587,
        });
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| "user or password is not valid UTF-8".to_owned())
        };
        let username = match url.username() {
            "" => None,
            user => Some(decode(user)?),
        };
        let password = url.password().map(decode).transpose()?;
        Ok(Self {
            host,
            port,
            tls,
            username,
            password,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The relay refused for good (5xx) or the message cannot be built.
    #[error("{0}")]
    Permanent(String),
    /// Worth another try: connection refused, timeout, 4xx.
    #[error("{0}")]
    Transient(String),
}

/// Sends mail through one relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(target: &SmtpTarget, from: &str, trust: &Trust) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("EMAIL_FROM is not an address: {e}"))?;
        let tls = || {
            trust
                .smtp_tls(&target.host)
                .map_err(|e| format!("TLS set-up: {e}"))
        };
        let tls = match target.tls {
            TlsMode::Implicit => Tls::Wrapper(tls()?),
            TlsMode::StartTls => Tls::Required(tls()?),
            TlsMode::Opportunistic => Tls::Opportunistic(tls()?),
            TlsMode::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&target.host)
            .port(target.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(20)));
        if let (Some(user), Some(password)) = (&target.username, &target.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// Sends one message as multipart/alternative (plain text, then HTML) under `message_id`
    /// (without angle brackets); returns the relay's answer.
    pub async fn send(
        &self,
        message_id: &str,
        to: &[String],
        email: &RenderedEmail,
    ) -> Result<String, SmtpError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .message_id(Some(format!("<{message_id}>")))
            .subject(email.subject.clone())
            .raw_header(header::HeaderValue::new(
                header::HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ));
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| SmtpError::Permanent(format!("recipient {address:?}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SmtpError::Permanent(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(error) if error.is_permanent() => Err(SmtpError::Permanent(error.to_string())),
            Err(error) => Err(SmtpError::Transient(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_tls_mode() {
        let t = SmtpTarget::parse("smtp://user:p%40ss@mail.example:587").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("mail.example", 587, TlsMode::StartTls)
        );
        assert_eq!(t.username.as_deref(), Some("user"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        let t = SmtpTarget::parse("smtps://mail.example").unwrap();
        assert_eq!((t.port, t.tls), (465, TlsMode::Implicit));
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("127.0.0.1", 2525, TlsMode::None)
        );
        assert_eq!(t.username, None);
        let t = SmtpTarget::parse("smtp://relay?tls=opportunistic").unwrap();
        assert_eq!((t.port, t.tls), (587, TlsMode::Opportunistic));
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (raw, expected) in [
            ("http://mail.example", "unknown scheme"),
            ("smtp://mail.example?tls=maybe", "tls=maybe"),
            ("smtps://mail.example?tls=none", "always uses TLS"),
            ("smtp://mail.example?mode=x", "unknown parameter"),
            ("mail.example:25", "unknown scheme"),
            ("not a url at all", "not a URL"),
        ] {
            let error = SmtpTarget::parse(raw).unwrap_err();
            assert!(error.contains(expected), "{raw}: {error}");
        }
        let shown = format!("{:?}", SmtpTarget::parse("smtp://u:secret@h").unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
