//! HTTPS for the fakes: a listener that completes a TLS handshake with the test server
//! certificate (`tests/fixtures/tls/`, signed by a throwaway certificate authority) before it
//! hands a connection to axum.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The test certificate authority's certificate, for `GITHUB_CA_BUNDLE`.
pub const CA_BUNDLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
const SERVER_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/server.pem");
const SERVER_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tls/server-key.pem"
);

/// A TLS acceptor presenting the test server certificate (for `127.0.0.1` and `localhost`).
pub fn acceptor() -> TlsAcceptor {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain = CertificateDer::pem_file_iter(SERVER_CERT)
        .expect("the test server certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("the test server certificate is PEM");
    let key = PrivateKeyDer::from_pem_file(SERVER_KEY).expect("the test server key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a usable server certificate");
    TlsAcceptor::from(Arc::new(config))
}

/// Accepts TCP connections and completes their TLS handshake; a connection whose handshake
/// fails (a client that does not trust the certificate) is dropped.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self { tcp, acceptor }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
