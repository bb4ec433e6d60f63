//! Shared fixtures of the public-API tests: a generated PKI written to a temp dir, and
//! a one-connection TLS server/client pair on 127.0.0.1 port 0.

#![allow(dead_code)] // each test binary uses a different subset

pub mod peer;
pub mod psk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use openssl::ssl::{NameType, SslAcceptor, SslConnector};
use seccf_tls::client::{self, ClientTlsConfig};
use seccf_tls::pki::{self, CertifiedKey};
use seccf_tls::server::{self, ServerTlsConfig};
use seccf_tls::TlsError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound for any single network step in a test; a hang becomes a failure.
pub const STEP: Duration = Duration::from_secs(15);

/// A CA with server and client leaves, plus a second, unrelated CA and its client.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: CertifiedKey,
    pub server: CertifiedKey,
    pub client: CertifiedKey,
    pub other_ca: CertifiedKey,
    pub other_client: CertifiedKey,
    /// Server leaf from the right CA but only for "other.example".
    pub wrong_name_server: CertifiedKey,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::generate_ca("seccf test CA", 2).unwrap();
        let server = pki::issue_server_cert(&ca, "kmc", &["localhost", "127.0.0.1"], 2).unwrap();
        let client = pki::issue_client_cert(&ca, "naf.example.org", 2).unwrap();
        let other_ca = pki::generate_ca("other CA", 2).unwrap();
        let other_client = pki::issue_client_cert(&other_ca, "naf.example.org", 2).unwrap();
        let wrong_name_server =
            pki::issue_server_cert(&ca, "other", &["other.example", "10.9.8.7"], 2).unwrap();
        let t = TestPki {
            dir,
            ca,
            server,
            client,
            other_ca,
            other_client,
            wrong_name_server,
        };
        for (name, ck) in [
            ("ca", &t.ca),
            ("server", &t.server),
            ("client", &t.client),
            ("other_ca", &t.other_ca),
            ("other_client", &t.other_client),
            ("wrong_name_server", &t.wrong_name_server),
        ] {
            pki::write_pem_pair(ck, &t.pem(name), &t.key(name)).unwrap();
        }
        t
    }

    pub fn pem(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    /// Server config with `server` as its certificate, trusting `ca` for clients.
    pub fn server_cfg(&self, require_client_cert: bool) -> ServerTlsConfig {
        ServerTlsConfig {
            cert_file: self.pem("server"),
            key_file: self.key("server"),
            client_ca_file: Some(self.pem("ca")),
            require_client_cert,
        }
    }

    /// Client config trusting `ca`, presenting the named leaf if any.
    pub fn client_cfg(&self, leaf: Option<&str>) -> ClientTlsConfig {
        ClientTlsConfig {
            ca_file: self.pem("ca"),
            client_cert_file: leaf.map(|l| self.pem(l)),
            client_key_file: leaf.map(|l| self.key(l)),
        }
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
pub struct ServerView {
    pub peer_fingerprint: Option<String>,
    pub sni: Option<String>,
    pub version: &'static str,
}

/// Binds 127.0.0.1:0 and serves exactly one TLS connection: reads one line and answers
/// `fp=<peer fingerprint or none>\n`, then closes.
pub async fn serve_once(
    acceptor: SslAcceptor,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Result<ServerView, TlsError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = tokio::time::timeout(STEP, server::accept(&acceptor, tcp))
            .await
            .map_err(|_| TlsError::Handshake("server handshake timed out".into()))??;
        let view = ServerView {
            peer_fingerprint: server::peer_cert_sha256(&tls),
            sni: tls.ssl().servername(NameType::HOST_NAME).map(str::to_owned),
            version: tls.ssl().version_str(),
        };
        let line = read_line(&mut tls).await?;
        assert_eq!(line, "hello");
        let answer = format!(
            "fp={}\n",
            view.peer_fingerprint.as_deref().unwrap_or("none")
        );
        tls.write_all(answer.as_bytes()).await?;
        tls.shutdown().await?;
        Ok(view)
    });
    (addr, task)
}

/// Reads up to a newline (bounded: tests never send long lines).
pub async fn read_line<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while out.len() < 1024 {
        let n = tokio::time::timeout(STEP, s.read(&mut byte))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out"))??;
        if n == 0 || byte[0] == b'\n' {
            break;
        }
        out.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Connects with `connector` to `addr` as `host`, says hello and returns the answer.
/// Err when the handshake fails or the server drops the connection without answering
/// (TLS 1.3 clients learn that their certificate was refused only after the handshake).
pub async fn talk(
    connector: &SslConnector,
    host: &str,
    addr: SocketAddr,
) -> Result<String, TlsError> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tokio::time::timeout(STEP, client::connect(connector, host, tcp))
        .await
        .map_err(|_| TlsError::Handshake("client handshake timed out".into()))??;
    tls.write_all(b"hello\n").await?;
    let answer = read_line(&mut tls).await?;
    if answer.is_empty() {
        return Err(TlsError::Handshake(
            "server closed without answering".into(),
        ));
    }
    Ok(answer)
}
