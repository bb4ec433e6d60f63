//! PSK fixtures: a recording key table, a recording client key source, and an echo
//! server that reports what `psk_peer` said about each connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use openssl::ssl::SslAcceptor;
use seccf_secret::SecretBytes;
use seccf_tls::psk::{self, PeerAuth, PskKeyLookup, PskRequest, PskTlsVersion};
use seccf_tls::server;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::{read_line, STEP};

/// A B-TID-shaped identity (base64(RAND)@BSF name, TS 33.220 B.3 form).
pub const ID: &str = "ssYUSnHRgsMVRx2s8cF7Dg==@bsf.example.org";
/// 32-byte test key (like a Ks_NAF), hex as the peers' command lines want it.
pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// Another key, for "wrong key" tests.
pub const WRONG_KEY_HEX: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn key() -> SecretBytes {
    SecretBytes::new(hex::decode(KEY_HEX).unwrap())
}

pub fn wrong_key() -> SecretBytes {
    SecretBytes::new(hex::decode(WRONG_KEY_HEX).unwrap())
}

/// What a server callback was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub identity: String,
    pub version: PskTlsVersion,
    pub cipher_suite: u16,
}

/// identity → key, recording every request.
#[derive(Default)]
pub struct Table {
    pub keys: HashMap<String, SecretBytes>,
    pub seen: Mutex<Vec<Seen>>,
}

impl Table {
    pub fn with_test_key() -> Arc<Table> {
        let mut keys = HashMap::new();
        keys.insert(ID.to_owned(), key());
        Arc::new(Table {
            keys,
            seen: Mutex::new(Vec::new()),
        })
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl PskKeyLookup for Table {
    fn lookup(&self, req: &PskRequest<'_>) -> Option<SecretBytes> {
        let identity = String::from_utf8_lossy(req.identity).into_owned();
        self.seen.lock().unwrap().push(Seen {
            identity: identity.clone(),
            version: req.version,
            cipher_suite: req.cipher_suite,
        });
        self.keys.get(&identity).cloned()
    }
}

/// What a client callback was shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub hint: Option<String>,
    pub version: PskTlsVersion,
    pub cipher_suite: u16,
}

/// A client key source answering `identity`/`key`, recording every call.
pub struct ClientKeys {
    pub identity: String,
    pub key: SecretBytes,
    pub shown: Mutex<Vec<Shown>>,
}

impl ClientKeys {
    pub fn new(identity: &str, key: SecretBytes) -> Arc<ClientKeys> {
        Arc::new(ClientKeys {
            identity: identity.to_owned(),
            key,
            shown: Mutex::new(Vec::new()),
        })
    }

    pub fn shown(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }
}

impl psk::PskClientKeys for ClientKeys {
    fn keys(
        &self,
        hint: Option<&[u8]>,
        version: PskTlsVersion,
        cipher_suite: u16,
    ) -> Option<(String, SecretBytes)> {
        self.shown.lock().unwrap().push(Shown {
            hint: hint.map(|h| String::from_utf8_lossy(h).into_owned()),
            version,
            cipher_suite,
        });
        Some((self.identity.clone(), self.key.clone()))
    }
}

/// What the server saw of one connection.
#[derive(Clone, Debug)]
pub struct Served {
    pub auth: PeerAuth,
    pub version: String,
    pub cipher: String,
    pub line: String,
}

/// Serves `n` connections one after another on 127.0.0.1:0: handshake, `psk_peer`, read
/// one line, answer `echo:<line>`, close. Each element is Ok(view) or the error text.
pub async fn serve(
    acceptor: SslAcceptor,
    n: usize,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<Vec<Result<Served, String>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(serve_one(&acceptor, &listener).await);
        }
        out
    });
    (addr, task)
}

async fn serve_one(acceptor: &SslAcceptor, listener: &TcpListener) -> Result<Served, String> {
    let (tcp, _) = tokio::time::timeout(STEP, listener.accept())
        .await
        .map_err(|_| "no connection".to_owned())?
        .map_err(|e| e.to_string())?;
    let mut tls = tokio::time::timeout(STEP, server::accept(acceptor, tcp))
        .await
        .map_err(|_| "handshake timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let auth = psk::psk_peer(&tls);
    let version = tls.ssl().version_str().to_owned();
    let cipher = tls
        .ssl()
        .current_cipher()
        .map(|c| c.name().to_owned())
        .unwrap_or_default();
    let line = read_line(&mut tls).await.map_err(|e| e.to_string())?;
    tls.write_all(format!("echo:{line}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let _ = tls.shutdown().await;
    Ok(Served {
        auth,
        version,
        cipher,
        line,
    })
}
