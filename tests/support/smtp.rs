//! A real SMTP server on loopback for the email tests: Python's `aiosmtpd` with its Maildir
//! handler, so every message the app sends lands as a file that the test reads back.
//! `scripts/test` installs aiosmtpd; without it the email tests say so and skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// One message as received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub subject: String,
    pub to: Vec<String>,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub content_type: String,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether aiosmtpd can run here; prints why not when it cannot.
pub fn smtp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: Python aiosmtpd is not installed (scripts/test installs it: pip install aiosmtpd)"
        );
    }
    ok
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts the server on `port` and waits until it accepts connections.
    pub async fn start_on(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("tollgate-mail-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mail dir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("Maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let sink = Self { child, port, dir };
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// `SMTP_URL` for this server.
    pub fn url(&self) -> String {
        smtp_url(self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let new = self.dir.join("Maildir").join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).ok();
                (modified.unwrap_or(std::time::UNIX_EPOCH), e.path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|raw| parse(&raw))
            .collect()
    }
}

pub fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?tls=none")
}

fn parse(raw: &[u8]) -> ReceivedMail {
    let mail = mailparse::parse_mail(raw).expect("a well-formed message");
    let header = |name: &str| {
        mail.headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let part = |mime: &str| {
        mail.subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .and_then(|p| p.get_body().ok())
            .unwrap_or_default()
    };
    ReceivedMail {
        subject: header("Subject"),
        to: header("To")
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect(),
        message_id: header("Message-ID"),
        text: part("text/plain"),
        html: part("text/html"),
        content_type: mail.ctype.mimetype.clone(),
    }
}
