//! OpenSSL plumbing shared by the seccf KMC, security gateway (OSG) and security agent.
//!
//! What this crate does:
//! - [`pki`]: a small test/dev PKI (ECDSA P-256 CA, server and client leaves), PEM file
//!   writing and loading, and SHA-256 certificate fingerprints, which is how the KMC
//!   names a NAF that talks to it over mutual TLS on Zn.
//! - [`server`]: a certificate TLS acceptor (TLS 1.2 and 1.3 only, optional or required
//!   client certificates checked against a configured CA file and nothing else) and the
//!   async handshake on an accepted TCP stream.
//! - [`client`]: a connector that trusts only a configured CA file, verifies the server's
//!   DNS name or IP address, and can present a client certificate.
//! - [`psk`]: PSK-TLS server and client (TLS 1.2 PSK suites and TLS 1.3 external PSK), with
//!   the identity hint GBA needs, the negotiated cipher suite visible to the key callbacks,
//!   and a post-handshake answer to "was this connection really authenticated by a PSK?".
//! - [`revocation`]: CRL checking inside mutual-TLS handshakes, OCSP checking (with
//!   nonce, signature and freshness checks and a bounded cache) right after them, and
//!   OCSP stapling of the server's own certificate.
//!
//! What it does not do (yet): DTLS, fetching CRLs from distribution points,
//! TLS 1.3 PSKs bound to SHA-384 or RFC 9258 importers (OpenSSL 3.0 cannot through the
//! callbacks used here), GBA key derivation (callers plug it in), handshake timeouts
//! (callers wrap [`server::accept`], [`client::connect`] and [`psk::psk_connect`] in
//! `tokio::time::timeout`), and anything at the HTTP layer.
//!
//! The only `unsafe` code of the project lives in the private `ffi` module: two libssl
//! functions the `openssl` crate does not bind (PSK identity hint setter, pending cipher
//! getter), with a safety essay.
//!
//! TLS is OpenSSL (system libssl 3.x) through the `openssl` and `tokio-openssl` crates;
//! `shared/reference/tls.md` explains why rustls is not used. This crate only moves bytes
//! through OpenSSL: it holds no protocol state of its own.

pub mod client;
mod der;
mod error;
mod ffi;
mod files;
pub mod pki;
pub mod psk;
pub mod revocation;
pub mod server;

pub use error::TlsError;
