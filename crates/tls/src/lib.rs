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
//!
//! What it does not do (yet): PSK-TLS and DTLS for the gateway (a future `psk` module),
//! CRL/OCSP revocation checks, handshake timeouts (callers wrap [`server::accept`] and
//! [`client::connect`] in `tokio::time::timeout`), and anything at the HTTP layer.
//!
//! TLS is OpenSSL (system libssl 3.x) through the `openssl` and `tokio-openssl` crates;
//! `shared/reference/tls.md` explains why rustls is not used. This crate only moves bytes
//! through OpenSSL: it holds no protocol state of its own.

pub mod client;
mod error;
mod files;
pub mod pki;
pub mod server;

pub use error::TlsError;
