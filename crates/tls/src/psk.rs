//! PSK-TLS on both sides: TLS 1.2 PSK cipher suites (RFC 4279, 5487, 5489) and TLS 1.3
//! external PSKs, for the security gateway (server) and the security agent (client).
//!
//! GBA "shared key TLS" (TS 33.222 clause 5.4) is the main user: the agent's identity is a
//! B-TID, the key is Ks_(ext)_NAF, and the server sends the identity hint
//! [`GBA_IDENTITY_HINT`] (TS 24.109 annex F.3). This module does not derive keys; callers
//! plug a [`PskKeyLookup`] (server) or [`PskClientKeys`] (client) in.
//!
//! # What the callbacks can see (measured, OpenSSL 3.0.19)
//!
//! The GBA key depends on the negotiated suite in TLS 1.2 (NAF_Id = FQDN || 01 00 01 yy zz,
//! TS 33.220 annex H), so both callbacks are told the suite:
//!
//! | callback | TLS 1.2 | TLS 1.3 |
//! | --- | --- | --- |
//! | server | called while reading ClientKeyExchange; suite known | called while reading the ClientHello `pre_shared_key` extension; the suite OpenSSL has already chosen is known |
//! | client | called while writing ClientKeyExchange, after ServerHello; suite known; hint known | called while writing the ClientHello: **no suite yet** (`cipher_suite` = 0), never a hint |
//!
//! `SslRef::current_cipher()` and the session's cipher are NULL inside every PSK callback;
//! the suite comes from `SSL_get_pending_cipher` (see `ffi.rs`). A client that allows
//! TLS 1.3 is asked twice when the server only speaks TLS 1.2: once for the ClientHello
//! (version [`PskTlsVersion::Tls13`], suite 0) and again for ClientKeyExchange (version
//! [`PskTlsVersion::Tls12`], the real suite, the hint). GBA's TLS 1.3 Ua id
//! (`01 00 00 00 07`) does not contain a suite, so 0 is all a TLS 1.3 key needs.
//! `tests/psk_cipher_visibility.rs` re-measures all of this on every test run.
//!
//! # Other OpenSSL facts this module is built around
//!
//! * TLS 1.3 external PSKs through these callbacks are bound to SHA-256: keep a `_SHA256`
//!   suite in `tls13_ciphersuites` (TLS_AES_256_GCM_SHA384 alone fails with alert 40).
//! * After a TLS 1.3 PSK handshake OpenSSL reports no identity, and a client whose PSK is
//!   unknown may complete a *certificate* handshake instead when the server also has a
//!   certificate. So the callbacks record what they accepted in the connection's ex_data,
//!   and [`psk_peer`] only reports [`PeerAuth::Psk`] when the finished handshake really
//!   used a PSK (TLS 1.3: the PSK "resumption" happened; TLS 1.2: a PSK key exchange).
//! * Session resumption is disabled on the PSK server: a resumed session would not pass
//!   through the key lookup (GBA keys have a lifetime, and the identity would be lost),
//!   and a PSK handshake costs no public-key operation anyway.
//!
//! # The lookup is synchronous
//!
//! OpenSSL calls the PSK callbacks in the middle of the handshake and waits for the
//! answer. A lookup must therefore be fast (a cache), or block without stalling the async
//! runtime: `tokio::task::block_in_place(|| Handle::current().block_on(fetch))`. That
//! needs tokio's **multi-thread** runtime; on a current-thread runtime `block_in_place`
//! panics. A panic inside a lookup is caught here and treated as "unknown identity"
//! (unwinding through OpenSSL would abort the process).

use std::ffi::CString;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use openssl::ex_data::Index;
use openssl::ssl::{
    SslAcceptor, SslAcceptorBuilder, SslConnector, SslMethod, SslOptions, SslRef,
    SslSessionCacheMode, SslVerifyMode, SslVersion,
};
use openssl::x509::store::X509StoreBuilder;
use seccf_secret::SecretBytes;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::error::handshake_error;
use crate::pki::parse_certificates;
use crate::server::{install_certificate, MAX_VERIFY_DEPTH};
use crate::{ffi, files, TlsError};

/// The identity hint a GBA NAF sends (TS 24.109 annex F.3).
pub const GBA_IDENTITY_HINT: &str = "3GPP-bootstrapping";

/// Longest PSK identity (and identity hint) handled, in bytes: OpenSSL's
/// PSK_MAX_IDENTITY_LEN. A client identity must be one byte shorter, because OpenSSL
/// hands the client callback a buffer of this size that must also hold a NUL.
pub const MAX_PSK_IDENTITY_LEN: usize = 256;

/// Longest PSK accepted, in bytes: OpenSSL's PSK_MAX_PSK_LEN (the size of the buffer
/// the callbacks write into).
pub const MAX_PSK_LEN: usize = 512;

/// Default TLS 1.2 suites: plain PSK (RFC 4279/5487), ECDHE_PSK (RFC 5489) and DHE_PSK,
/// AEAD first. All work at OpenSSL's default security level 2.
pub const DEFAULT_TLS12_PSK_CIPHERS: &str = "PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:\
PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA:ECDHE-PSK-AES128-CBC-SHA256:\
ECDHE-PSK-CHACHA20-POLY1305:DHE-PSK-AES128-GCM-SHA256";

/// Default TLS 1.3 suites: only SHA-256 ones, the hash OpenSSL binds external PSKs to.
pub const DEFAULT_TLS13_CIPHERSUITES: &str = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";

/// TLS 1.2 certificate suites added when a PSK server also has a certificate (the
/// Mozilla "intermediate" list), so certificate clients can use the same port.
const TLS12_CERT_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/// SSL_OP_ALLOW_NO_DHE_KEX (bit 10 in OpenSSL 3.0's ssl.h); the `openssl` crate has no
/// named constant for it.
const ALLOW_NO_DHE_KEX: SslOptions = SslOptions::from_bits_retain(1 << 10);

/// The TLS version of a PSK handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
pub enum PskTlsVersion {
    /// TLS 1.2 with a PSK cipher suite.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 with an external PSK.
    #[serde(rename = "1.3")]
    Tls13,
}

impl PskTlsVersion {
    fn of(ssl: &SslRef) -> Option<PskTlsVersion> {
        match ssl.version2() {
            Some(v) if v == SslVersion::TLS1_2 => Some(PskTlsVersion::Tls12),
            Some(v) if v == SslVersion::TLS1_3 => Some(PskTlsVersion::Tls13),
            _ => None,
        }
    }
}

/// What the server learns about the PSK handshake in the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PskRequest<'a> {
    /// The identity the client sent (for GBA a B-TID). Always valid UTF-8 and at most
    /// [`MAX_PSK_IDENTITY_LEN`] bytes: other identities are refused before the lookup.
    pub identity: &'a [u8],
    /// The version being negotiated.
    pub version: PskTlsVersion,
    /// IANA id of the negotiated suite (for example 0x00A8 for PSK-AES128-GCM-SHA256),
    /// 0 if unknown (measured: always known on the server side).
    pub cipher_suite: u16,
}

/// Synchronous key lookup called from inside the OpenSSL server callback.
///
/// Implementations must be fast (a cache) or block in a way that does not stall the
/// runtime: `tokio::task::block_in_place(|| Handle::current().block_on(..))`, which only
/// works on tokio's multi-thread runtime (see the module docs). Return `None` for an
/// unknown identity: the client then gets alert 115 `unknown_psk_identity` in TLS 1.2.
pub trait PskKeyLookup: Send + Sync + 'static {
    /// The key for `req.identity`, or `None`.
    fn lookup(&self, req: &PskRequest<'_>) -> Option<SecretBytes>;
}

impl<F> PskKeyLookup for F
where
    F: Fn(&PskRequest<'_>) -> Option<SecretBytes> + Send + Sync + 'static,
{
    fn lookup(&self, req: &PskRequest<'_>) -> Option<SecretBytes> {
        self(req)
    }
}

/// PSK-TLS server settings (TOML-friendly; every field has a default).
///
/// ```toml
/// identity_hint = "3GPP-bootstrapping"
/// enable_tls13 = true
/// certificate = ["/etc/seccf/osg.pem", "/etc/seccf/osg.key"]   # optional
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PskServerConfig {
    /// Identity hint sent in TLS 1.2 ServerKeyExchange; [`GBA_IDENTITY_HINT`] for GBA.
    /// TLS 1.3 has no hint. At most [`MAX_PSK_IDENTITY_LEN`] printable ASCII bytes.
    pub identity_hint: Option<String>,
    /// TLS 1.2 suites, OpenSSL syntax. Default [`DEFAULT_TLS12_PSK_CIPHERS`].
    pub tls12_ciphers: String,
    /// TLS 1.3 suites, OpenSSL syntax; must contain a `_SHA256` suite.
    /// Default [`DEFAULT_TLS13_CIPHERSUITES`].
    pub tls13_ciphersuites: String,
    /// Offer TLS 1.3 (external PSK). Default true.
    pub enable_tls13: bool,
    /// Accept TLS 1.3 `psk_ke` (PSK without (EC)DHE, no forward secrecy), which some
    /// clients (gnutls priority `+PSK`) insist on. Default false.
    pub allow_psk_ke_without_dhe: bool,
    /// Optional certificate chain and key files (PEM), to also serve certificate clients
    /// (for example certificate TLS + HTTP Digest) on the same port. When set, the
    /// Mozilla "intermediate" TLS 1.2 certificate suites are appended to `tls12_ciphers`.
    pub certificate: Option<(PathBuf, PathBuf)>,
}

impl Default for PskServerConfig {
    fn default() -> Self {
        PskServerConfig {
            identity_hint: None,
            tls12_ciphers: DEFAULT_TLS12_PSK_CIPHERS.to_owned(),
            tls13_ciphersuites: DEFAULT_TLS13_CIPHERSUITES.to_owned(),
            enable_tls13: true,
            allow_psk_ke_without_dhe: false,
            certificate: None,
        }
    }
}

/// Which authentication a finished handshake actually used.
///
/// TLS 1.3 gives no identity after the handshake and an unknown PSK may fall back to a
/// certificate handshake, so the identity and the fact that a PSK was used are captured
/// in the callbacks and cross-checked against the finished handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAuth {
    /// The handshake was authenticated by a PSK.
    Psk {
        /// The identity (server side: what the client sent; client side: what we sent).
        identity: String,
        /// The negotiated version.
        version: PskTlsVersion,
        /// IANA id of the negotiated suite.
        cipher_suite: u16,
    },
    /// No PSK was used (certificate handshake, or not a PSK connection at all).
    None,
}

/// What a callback accepted, kept in the connection's ex_data until the handshake ends.
#[derive(Clone, Debug)]
struct PskRecord {
    identity: String,
    version: PskTlsVersion,
}

/// One ex_data slot per process for [`PskRecord`]s; `None` if OpenSSL could not
/// allocate one (then every PSK context fails to build, with that reason).
fn record_index() -> Result<Index<openssl::ssl::Ssl, Option<PskRecord>>, TlsError> {
    static INDEX: OnceLock<Option<Index<openssl::ssl::Ssl, Option<PskRecord>>>> = OnceLock::new();
    INDEX
        .get_or_init(|| openssl::ssl::Ssl::new_ex_index().ok())
        .ok_or_else(|| TlsError::Config("OpenSSL could not allocate an ex_data index".into()))
}

/// Which authentication the finished handshake on `stream` used (server or client side).
pub fn psk_peer<S>(stream: &SslStream<S>) -> PeerAuth {
    peer_auth(stream.ssl())
}

/// [`psk_peer`] for a bare `SslRef`.
pub fn peer_auth(ssl: &SslRef) -> PeerAuth {
    let Ok(index) = record_index() else {
        return PeerAuth::None;
    };
    let Some(Some(record)) = ssl.ex_data(index) else {
        return PeerAuth::None;
    };
    let Some(cipher) = ssl.current_cipher() else {
        return PeerAuth::None;
    };
    let used_psk = match (record.version, PskTlsVersion::of(ssl)) {
        // OpenSSL runs a TLS 1.3 external PSK as a resumed session; a handshake that
        // fell back to a certificate is a full one.
        (PskTlsVersion::Tls13, Some(PskTlsVersion::Tls13)) => ssl.session_reused(),
        (PskTlsVersion::Tls12, Some(PskTlsVersion::Tls12)) => is_psk_key_exchange(cipher),
        _ => false,
    };
    if !used_psk {
        return PeerAuth::None;
    }
    PeerAuth::Psk {
        identity: record.identity.clone(),
        version: record.version,
        cipher_suite: u16::from_be_bytes(cipher.protocol_id()),
    }
}

/// True for TLS 1.2 suites whose key exchange involves a PSK (PSK, DHE_PSK, ECDHE_PSK,
/// RSA_PSK). The `openssl` crate exposes no key-exchange NID, so this reads the `Kx=`
/// field of OpenSSL's cipher description ("Kx=PSK", "Kx=ECDHEPSK", ...).
fn is_psk_key_exchange(cipher: &openssl::ssl::SslCipherRef) -> bool {
    kx_is_psk(&cipher.description())
}

fn kx_is_psk(description: &str) -> bool {
    description
        .split_whitespace()
        .filter_map(|field| field.strip_prefix("Kx="))
        .any(|kx| kx.ends_with("PSK"))
}

fn record(
    ssl: &mut SslRef,
    index: Index<openssl::ssl::Ssl, Option<PskRecord>>,
    r: Option<PskRecord>,
) {
    ssl.set_ex_data(index, r);
}

/// Checks an identity hint or identity: 1..=max bytes of printable ASCII. OpenSSL
/// carries both as C strings, and GBA values (B-TIDs, the hint) are ASCII.
fn check_identity_text(what: &str, text: &str, max: usize) -> Result<CString, TlsError> {
    if text.is_empty() || text.len() > max {
        return Err(TlsError::Config(format!(
            "{what} must be 1..={max} bytes, got {}",
            text.len()
        )));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(TlsError::Config(format!("{what} must be printable ASCII")));
    }
    CString::new(text).map_err(|_| TlsError::Config(format!("{what} contains a NUL byte")))
}

/// OpenSSL binds TLS 1.3 external PSKs from these callbacks to SHA-256, so a suite list
/// without a SHA-256 suite can never complete a PSK handshake.
fn check_tls13_suites(list: &str) -> Result<(), TlsError> {
    if list.split(':').any(|s| s.trim().ends_with("_SHA256")) {
        Ok(())
    } else {
        Err(TlsError::Config(format!(
            "tls13_ciphersuites {list:?} has no _SHA256 suite: OpenSSL binds external PSKs to SHA-256"
        )))
    }
}

/// Runs a user callback, turning a panic into `None`: unwinding out of an OpenSSL
/// callback would abort the process.
fn guarded<T>(what: &str, f: impl FnOnce() -> Option<T>) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            tracing::error!(callback = what, "PSK callback panicked; handshake refused");
            None
        }
    }
}

/// Builds a PSK-TLS server.
///
/// TLS 1.2 (and 1.3 unless disabled) only, the configured suites, the identity hint,
/// no session resumption, no client certificates. Use [`crate::server::accept`] for the
/// handshake and [`psk_peer`] afterwards.
pub fn build_psk_acceptor(
    cfg: &PskServerConfig,
    lookup: Arc<dyn PskKeyLookup>,
) -> Result<SslAcceptor, TlsError> {
    Ok(psk_acceptor_builder(cfg, lookup)?.build())
}

/// The builder behind [`build_psk_acceptor`], for callers that add settings (ALPN)
/// before building. Every security setting is already applied.
pub fn psk_acceptor_builder(
    cfg: &PskServerConfig,
    lookup: Arc<dyn PskKeyLookup>,
) -> Result<SslAcceptorBuilder, TlsError> {
    let index = record_index()?;
    let ossl = |what: &'static str| move |e| TlsError::Config(format!("{what}: {e}"));
    let hint = cfg
        .identity_hint
        .as_deref()
        .map(|h| check_identity_text("identity_hint", h, MAX_PSK_IDENTITY_LEN))
        .transpose()?;
    if cfg.enable_tls13 {
        check_tls13_suites(&cfg.tls13_ciphersuites)?;
    }

    // Start from the Mozilla profile for its option set (no compression, no
    // renegotiation of old protocols, ECDH curves, FFDHE-2048 for DHE-PSK), then
    // replace its cipher lists, which contain no PSK suite.
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(ossl("OpenSSL server context"))?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ossl("minimum TLS version"))?;
    if !cfg.enable_tls13 {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ossl("maximum TLS version"))?;
    }
    let tls12 = if cfg.certificate.is_some() {
        format!("{}:{TLS12_CERT_CIPHERS}", cfg.tls12_ciphers)
    } else {
        cfg.tls12_ciphers.clone()
    };
    b.set_cipher_list(&tls12)
        .map_err(|e| TlsError::Config(format!("tls12_ciphers {:?}: {e}", cfg.tls12_ciphers)))?;
    b.set_ciphersuites(&cfg.tls13_ciphersuites).map_err(|e| {
        TlsError::Config(format!(
            "tls13_ciphersuites {:?}: {e}",
            cfg.tls13_ciphersuites
        ))
    })?;
    if cfg.allow_psk_ke_without_dhe {
        b.set_options(ALLOW_NO_DHE_KEX);
    }
    if let Some(hint) = &hint {
        ffi::set_psk_identity_hint(&mut b, hint).map_err(ossl("identity_hint"))?;
    }
    // No resumption: see the module docs.
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_options(SslOptions::NO_TICKET);
    b.set_num_tickets(0).map_err(ossl("TLS 1.3 tickets"))?;
    b.set_verify(SslVerifyMode::NONE);
    if let Some((cert, key)) = &cfg.certificate {
        install_certificate(&mut b, cert, key, ("certificate", "certificate key"))?;
    }

    b.set_psk_server_callback(move |ssl, identity, psk_out| {
        // Forget anything an earlier call in this handshake accepted: TLS 1.3 asks once
        // per offered identity, and only the answer that sticks may be reported.
        record(ssl, index, None);
        let Some(version) = PskTlsVersion::of(ssl) else {
            return Ok(0);
        };
        let cipher_suite = ffi::pending_cipher_id(ssl).unwrap_or(0);
        let Some(identity) = identity else {
            return Ok(0);
        };
        // Binary identities (TLS 1.3 session tickets from elsewhere) and oversized
        // ones never reach the lookup.
        let Some(text) = std::str::from_utf8(identity)
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= MAX_PSK_IDENTITY_LEN)
        else {
            tracing::debug!(
                len = identity.len(),
                "PSK identity refused: not short UTF-8"
            );
            return Ok(0);
        };
        let req = PskRequest {
            identity,
            version,
            cipher_suite,
        };
        let Some(key) = guarded("PskKeyLookup::lookup", || lookup.lookup(&req)) else {
            tracing::debug!(
                identity = text,
                ?version,
                cipher_suite,
                "unknown PSK identity"
            );
            return Ok(0);
        };
        let Some(out) = psk_out.get_mut(..key.len()).filter(|_| !key.is_empty()) else {
            tracing::warn!(
                identity = text,
                len = key.len(),
                max = psk_out.len(),
                "PSK lookup returned an empty or oversized key; handshake refused"
            );
            return Ok(0);
        };
        out.copy_from_slice(key.expose());
        record(
            ssl,
            index,
            Some(PskRecord {
                identity: text.to_owned(),
                version,
            }),
        );
        Ok(key.len())
    });
    Ok(b)
}

/// Client-side key choice: sees the server's hint and, in TLS 1.2, the negotiated suite
/// (GBA needs it for the Ua protocol id). See the module docs for when each is known.
pub trait PskClientKeys: Send + Sync + 'static {
    /// The identity (printable ASCII, shorter than [`MAX_PSK_IDENTITY_LEN`]) and key to
    /// use, or `None` to offer no PSK.
    fn keys(
        &self,
        hint: Option<&[u8]>,
        version: PskTlsVersion,
        cipher_suite: u16,
    ) -> Option<(String, SecretBytes)>;
}

impl<F> PskClientKeys for F
where
    F: Fn(Option<&[u8]>, PskTlsVersion, u16) -> Option<(String, SecretBytes)>
        + Send
        + Sync
        + 'static,
{
    fn keys(
        &self,
        hint: Option<&[u8]>,
        version: PskTlsVersion,
        cipher_suite: u16,
    ) -> Option<(String, SecretBytes)> {
        self(hint, version, cipher_suite)
    }
}

/// PSK-TLS client settings (TOML-friendly; every field has a default).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PskClientConfig {
    /// TLS 1.2 suites, OpenSSL syntax. Default [`DEFAULT_TLS12_PSK_CIPHERS`]. Certificate
    /// suites must be listed here explicitly if wanted.
    pub tls12_ciphers: String,
    /// TLS 1.3 suites; must contain a `_SHA256` suite. Default [`DEFAULT_TLS13_CIPHERSUITES`].
    pub tls13_ciphersuites: String,
    /// Offer TLS 1.3. Default true.
    pub enable_tls13: bool,
    /// Highest version offered (`"1.2"` or `"1.3"` in TOML); `None` = no extra cap.
    pub max_version: Option<PskTlsVersion>,
    /// CAs (PEM) a server *certificate* must chain to. Without it no certificate is
    /// accepted, so only a PSK handshake can succeed. With it, a server that does not
    /// take our PSK may authenticate with a certificate for the connected host name
    /// instead; [`psk_peer`] tells the two apart.
    pub server_ca_file: Option<PathBuf>,
}

impl Default for PskClientConfig {
    fn default() -> Self {
        PskClientConfig {
            tls12_ciphers: DEFAULT_TLS12_PSK_CIPHERS.to_owned(),
            tls13_ciphersuites: DEFAULT_TLS13_CIPHERSUITES.to_owned(),
            enable_tls13: true,
            max_version: None,
            server_ca_file: None,
        }
    }
}

/// A connector whose keys come from `keys`. Use [`psk_connect`] to connect.
pub fn build_psk_connector(
    cfg: &PskClientConfig,
    keys: Arc<dyn PskClientKeys>,
) -> Result<SslConnector, TlsError> {
    let index = record_index()?;
    let ossl = |what: &'static str| move |e| TlsError::Config(format!("{what}: {e}"));
    let tls13 = cfg.enable_tls13 && cfg.max_version != Some(PskTlsVersion::Tls12);
    if tls13 {
        check_tls13_suites(&cfg.tls13_ciphersuites)?;
    }

    // SslConnector::builder turns on peer verification and loads the system trust
    // store; the store is replaced below (by the configured CAs, or by nothing).
    let mut b =
        SslConnector::builder(SslMethod::tls_client()).map_err(ossl("OpenSSL client context"))?;
    let mut store = X509StoreBuilder::new().map_err(ossl("CA store"))?;
    if let Some(path) = &cfg.server_ca_file {
        let what = format!("server_ca_file {}", path.display());
        for ca in parse_certificates(&files::read_pem_file(path, "server_ca_file")?, &what)? {
            store
                .add_cert(ca)
                .map_err(|e| TlsError::Config(format!("{what}: {e}")))?;
        }
    }
    b.set_cert_store(store.build());
    b.set_verify(SslVerifyMode::PEER);
    b.set_verify_depth(MAX_VERIFY_DEPTH);
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(ossl("minimum TLS version"))?;
    if !tls13 {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))
            .map_err(ossl("maximum TLS version"))?;
    }
    b.set_cipher_list(&cfg.tls12_ciphers)
        .map_err(|e| TlsError::Config(format!("tls12_ciphers {:?}: {e}", cfg.tls12_ciphers)))?;
    b.set_ciphersuites(&cfg.tls13_ciphersuites).map_err(|e| {
        TlsError::Config(format!(
            "tls13_ciphersuites {:?}: {e}",
            cfg.tls13_ciphersuites
        ))
    })?;

    b.set_psk_client_callback(move |ssl, hint, identity_out, psk_out| {
        record(ssl, index, None);
        let Some(version) = PskTlsVersion::of(ssl) else {
            return Ok(0);
        };
        let cipher_suite = ffi::pending_cipher_id(ssl).unwrap_or(0);
        let Some((identity, key)) = guarded("PskClientKeys::keys", || {
            keys.keys(hint, version, cipher_suite)
        }) else {
            return Ok(0);
        };
        // The identity goes out as a C string: it needs room for the NUL.
        if check_identity_text("PSK identity", &identity, MAX_PSK_IDENTITY_LEN - 1).is_err()
            || identity.len() >= identity_out.len()
        {
            tracing::warn!(
                len = identity.len(),
                "PSK identity unusable; no PSK offered"
            );
            return Ok(0);
        }
        let Some(key_out) = psk_out.get_mut(..key.len()).filter(|_| !key.is_empty()) else {
            tracing::warn!(len = key.len(), "PSK empty or too long; no PSK offered");
            return Ok(0);
        };
        key_out.copy_from_slice(key.expose());
        write_c_string(identity_out, identity.as_bytes());
        record(ssl, index, Some(PskRecord { identity, version }));
        Ok(key.len())
    });
    Ok(b.build())
}

/// Writes `text` and a NUL into `out`; the caller has checked that it fits.
fn write_c_string(out: &mut [u8], text: &[u8]) {
    for (dst, src) in out.iter_mut().zip(text.iter().chain(std::iter::once(&0u8))) {
        *dst = *src;
    }
}

/// Connects PSK-TLS over `tcp`. `host` is sent as SNI (DNS names only) and, if the
/// server authenticates with a certificate, must match it.
///
/// Fails unless the finished handshake used our PSK or a server certificate that
/// verified against `server_ca_file` (an anonymous suite in a custom cipher list, for
/// example, is refused here). No timeout: wrap the call in `tokio::time::timeout`.
pub async fn psk_connect(
    connector: &SslConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<SslStream<TcpStream>, TlsError> {
    let host = crate::client::normalize_host(host)?;
    let ssl = connector
        .configure()
        .and_then(|c| c.into_ssl(host))
        .map_err(|e| TlsError::Config(format!("TLS session for host {host:?}: {e}")))?;
    let mut stream = SslStream::new(ssl, tcp)
        .map_err(|e| TlsError::Handshake(format!("creating TLS stream: {e}")))?;
    if let Err(e) = Pin::new(&mut stream).connect().await {
        let err = handshake_error(&e, stream.ssl());
        tracing::debug!(host, error = %err, "PSK-TLS client handshake failed");
        return Err(err);
    }
    let ssl = stream.ssl();
    let cert_ok = ssl.peer_certificate().is_some()
        && ssl.verify_result() == openssl::x509::X509VerifyResult::OK;
    if matches!(peer_auth(ssl), PeerAuth::None) && !cert_ok {
        return Err(TlsError::Handshake(
            "server authenticated neither with our PSK nor with a verified certificate".into(),
        ));
    }
    Ok(stream)
}

impl fmt::Display for PskTlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PskTlsVersion::Tls12 => "TLSv1.2",
            PskTlsVersion::Tls13 => "TLSv1.3",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl ciphers -v` lines of OpenSSL 3.0.19 (the same text SSL_CIPHER_description
    /// produces).
    #[test]
    fn psk_key_exchanges_are_recognised() {
        let lines = [
            ("TLS_AES_128_GCM_SHA256         TLSv1.3 Kx=any      Au=any   Enc=AESGCM(128)            Mac=AEAD", false),
            ("PSK-AES128-GCM-SHA256          TLSv1.2 Kx=PSK      Au=PSK   Enc=AESGCM(128)            Mac=AEAD", true),
            ("ECDHE-PSK-CHACHA20-POLY1305    TLSv1.2 Kx=ECDHEPSK Au=PSK   Enc=CHACHA20/POLY1305(256) Mac=AEAD", true),
            ("DHE-PSK-AES128-GCM-SHA256      TLSv1.2 Kx=DHEPSK   Au=PSK   Enc=AESGCM(128)            Mac=AEAD", true),
            ("RSA-PSK-AES128-GCM-SHA256      TLSv1.2 Kx=RSAPSK   Au=RSA   Enc=AESGCM(128)            Mac=AEAD", true),
            ("ECDHE-ECDSA-AES128-GCM-SHA256  TLSv1.2 Kx=ECDH     Au=ECDSA Enc=AESGCM(128)            Mac=AEAD", false),
            ("DHE-RSA-AES128-GCM-SHA256      TLSv1.2 Kx=DH       Au=RSA   Enc=AESGCM(128)            Mac=AEAD", false),
            ("AES128-GCM-SHA256              TLSv1.2 Kx=RSA      Au=RSA   Enc=AESGCM(128)            Mac=AEAD", false),
        ];
        for (line, psk) in lines {
            assert_eq!(kx_is_psk(line), psk, "{line}");
        }
        // The name alone does not decide: only the Kx field counts.
        assert!(!kx_is_psk("PSK-LOOKALIKE TLSv1.2 Kx=ECDH Au=PSK"));
    }

    #[test]
    fn identity_text_rules() {
        assert!(check_identity_text("h", GBA_IDENTITY_HINT, MAX_PSK_IDENTITY_LEN).is_ok());
        assert!(check_identity_text("h", "", 10).is_err());
        assert!(check_identity_text("h", "abc", 2).is_err());
        assert!(check_identity_text("h", "a\nb", 10).is_err());
        assert!(check_identity_text("h", "a\0b", 10).is_err());
        assert!(check_identity_text("h", "bücher", 10).is_err());
        assert!(check_identity_text("h", "a b", 10).is_ok());
    }

    #[test]
    fn tls13_suites_need_sha256() {
        assert!(check_tls13_suites(DEFAULT_TLS13_CIPHERSUITES).is_ok());
        assert!(check_tls13_suites("TLS_AES_256_GCM_SHA384").is_err());
        assert!(check_tls13_suites("").is_err());
        let cfg = PskServerConfig {
            tls13_ciphersuites: "TLS_AES_256_GCM_SHA384".into(),
            ..PskServerConfig::default()
        };
        let lookup: Arc<dyn PskKeyLookup> = Arc::new(|_: &PskRequest<'_>| None);
        assert!(build_psk_acceptor(&cfg, lookup.clone()).is_err());
        // Fine when TLS 1.3 is off.
        let cfg = PskServerConfig {
            enable_tls13: false,
            ..cfg
        };
        assert!(build_psk_acceptor(&cfg, lookup).is_ok());
    }

    #[test]
    fn server_config_errors() {
        let lookup: Arc<dyn PskKeyLookup> = Arc::new(|_: &PskRequest<'_>| None);
        let bad = |cfg: PskServerConfig| {
            build_psk_acceptor(&cfg, lookup.clone())
                .err()
                .map(|e| e.to_string())
        };
        let msg = bad(PskServerConfig {
            tls12_ciphers: "NO-SUCH-CIPHER".into(),
            ..PskServerConfig::default()
        })
        .unwrap();
        assert!(msg.contains("tls12_ciphers"), "{msg}");
        let msg = bad(PskServerConfig {
            identity_hint: Some("x".repeat(MAX_PSK_IDENTITY_LEN + 1)),
            ..PskServerConfig::default()
        })
        .unwrap();
        assert!(msg.contains("identity_hint"), "{msg}");
        let msg = bad(PskServerConfig {
            certificate: Some(("/nonexistent/c.pem".into(), "/nonexistent/c.key".into())),
            ..PskServerConfig::default()
        })
        .unwrap();
        assert!(msg.contains("/nonexistent/c.pem"), "{msg}");
        assert!(bad(PskServerConfig {
            identity_hint: Some(GBA_IDENTITY_HINT.into()),
            ..PskServerConfig::default()
        })
        .is_none());
    }

    #[test]
    fn client_config_errors() {
        let keys: Arc<dyn PskClientKeys> = Arc::new(|_: Option<&[u8]>, _, _| None);
        let cfg = PskClientConfig {
            tls13_ciphersuites: "TLS_AES_256_GCM_SHA384".into(),
            ..PskClientConfig::default()
        };
        assert!(build_psk_connector(&cfg, keys.clone()).is_err());
        // Capping at 1.2 makes the TLS 1.3 list irrelevant.
        let cfg = PskClientConfig {
            max_version: Some(PskTlsVersion::Tls12),
            ..cfg
        };
        assert!(build_psk_connector(&cfg, keys.clone()).is_ok());
        let cfg = PskClientConfig {
            server_ca_file: Some("/nonexistent/ca.pem".into()),
            ..PskClientConfig::default()
        };
        let msg = build_psk_connector(&cfg, keys).err().unwrap().to_string();
        assert!(msg.contains("server_ca_file"), "{msg}");
    }

    #[test]
    fn c_string_is_nul_terminated() {
        let mut buf = [0xffu8; 8];
        write_c_string(&mut buf, b"abc");
        assert_eq!(buf, [b'a', b'b', b'c', 0, 0xff, 0xff, 0xff, 0xff]);
    }
}
