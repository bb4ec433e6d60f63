//! The one error type of this crate.

use std::path::PathBuf;

/// Errors of PKI generation, TLS configuration and handshakes.
///
/// Messages name files and OpenSSL reasons, never key material: OpenSSL's error queue
/// carries library/function/reason codes, not the bytes it was parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Socket I/O failed outside the TLS handshake.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Configuration is unusable: which file or setting, and what is wrong with it.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The TLS handshake failed: OpenSSL's reason and, when a certificate was rejected,
    /// the verification result (for example "hostname mismatch").
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// Generating a key or certificate failed (bad name, bad SAN, OpenSSL error).
    #[error("certificate generation: {0}")]
    Pki(String),
    /// An OCSP message or URL could not be built or understood (which part, never the
    /// bytes themselves).
    #[error("OCSP: {0}")]
    Ocsp(String),
    /// Writing a PEM file failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file (or directory) that could not be written.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// Turns a failed handshake into [`TlsError::Handshake`], adding the certificate
/// verification result when that is why it failed: OpenSSL's own message only says
/// "certificate verify failed", which does not tell an operator what to fix.
pub(crate) fn handshake_error(err: &openssl::ssl::Error, ssl: &openssl::ssl::SslRef) -> TlsError {
    let verify = ssl.verify_result();
    let reason = if verify == openssl::x509::X509VerifyResult::OK {
        err.to_string()
    } else {
        format!("{err} (certificate: {})", verify.error_string())
    };
    TlsError::Handshake(reason)
}
