//! The only `unsafe` code in seccf: two libssl functions that the `openssl` crate
//! (0.10.82 / openssl-sys 0.9.118) does not bind, wrapped in safe functions.
//!
//! # Why these two
//!
//! * `SSL_CTX_use_psk_identity_hint`: a GBA NAF must send the PSK identity hint
//!   "3GPP-bootstrapping" in ServerKeyExchange (TS 24.109 annex F.3); rust-openssl has a
//!   getter for the hint but no setter (rust-openssl PR #2576 adds one, not merged).
//! * `SSL_get_pending_cipher`: the GBA key of a TLS 1.2 PSK handshake depends on the
//!   negotiated cipher suite (NAF_Id = FQDN || 01 00 01 yy zz, TS 33.220 annex H), and both
//!   PSK callbacks run before OpenSSL installs that suite as the "current" one. Measured on
//!   OpenSSL 3.0.19 (see `psk` module docs and `tests/psk_cipher_visibility.rs`):
//!   `SslRef::current_cipher()` and the session's cipher are both NULL inside the client
//!   and server PSK callbacks, while `SSL_get_pending_cipher` returns the suite chosen in
//!   ServerHello.
//!
//! Nothing else: SSL_OP_ALLOW_NO_DHE_KEX is set through the safe
//! `SslOptions::from_bits_retain(1 << 10)`, and `SSL_CIPHER_get_protocol_id` is already
//! declared by openssl-sys.
//!
//! # SAFETY essay
//!
//! Both functions exist with these exact C prototypes in every OpenSSL since 1.1.1
//! (`include/openssl/ssl.h`; this project links the system OpenSSL 3.0 or the vendored
//! 3.x):
//!
//! ```c
//! int SSL_CTX_use_psk_identity_hint(SSL_CTX *ctx, const char *identity_hint);
//! const SSL_CIPHER *SSL_get_pending_cipher(const SSL *s);
//! ```
//!
//! The Rust declarations below use the opaque `SSL_CTX`, `SSL` and `SSL_CIPHER` types of
//! openssl-sys, `c_char`/`c_int` from `std::ffi`, and the C ABI, so the calls match the
//! prototypes. openssl-sys already links libssl, which exports both symbols (a missing
//! symbol would fail at link time, never at run time).
//!
//! `SSL_CTX_use_psk_identity_hint` requires: `ctx` a valid, live `SSL_CTX`; `hint` NULL or
//! a NUL-terminated string that stays valid for the duration of the call (OpenSSL copies
//! it with `OPENSSL_strdup` and frees its copy with the context); no other thread using
//! `ctx` at the same time. [`set_psk_identity_hint`] takes `&mut SslContextBuilder`, whose
//! `as_ptr` is the live context it owns, and the exclusive borrow rules out concurrent
//! use; the hint is a `&CStr`, so it is NUL-terminated and outlives the call. The
//! function only returns 0 or 1 (0 when the hint is longer than PSK_MAX_IDENTITY_LEN),
//! which we turn into an error; on failure OpenSSL has pushed onto its error queue,
//! which `ErrorStack::get` drains.
//!
//! `SSL_get_pending_cipher` requires a valid, live `SSL`; it only reads
//! `s->s3.tmp.new_cipher` and returns it, possibly NULL. [`pending_cipher_id`] takes
//! `&SslRef`, whose pointer is live for the borrow (`ForeignTypeRef::as_ptr`). The
//! returned `SSL_CIPHER` lives in libssl's static cipher tables (it is never freed), but
//! we do not rely on that: the pointer is used once, immediately, within the same borrow,
//! for `SSL_CIPHER_get_protocol_id` (which requires a valid non-NULL `SSL_CIPHER` and
//! returns a plain `uint16_t`), after a NULL check. No pointer or reference escapes.
//!
//! Neither function calls back into Rust, so no unwinding can cross the boundary.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};

use foreign_types::ForeignTypeRef as _;
use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslRef};

extern "C" {
    fn SSL_CTX_use_psk_identity_hint(ctx: *mut openssl_sys::SSL_CTX, hint: *const c_char) -> c_int;
    fn SSL_get_pending_cipher(ssl: *const openssl_sys::SSL) -> *const openssl_sys::SSL_CIPHER;
}

/// Sets the PSK identity hint a TLS 1.2 server sends in ServerKeyExchange.
pub(crate) fn set_psk_identity_hint(
    builder: &mut SslContextBuilder,
    hint: &CStr,
) -> Result<(), ErrorStack> {
    // SAFETY: see the module essay: live context owned by the exclusively borrowed
    // builder, NUL-terminated hint valid for the call, OpenSSL copies it.
    let rc = unsafe { SSL_CTX_use_psk_identity_hint(builder.as_ptr(), hint.as_ptr()) };
    if rc == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// IANA id of the cipher suite OpenSSL has selected for the handshake in progress
/// (`SSL_get_pending_cipher`), or `None` when none is selected yet (a client still
/// building its ClientHello).
pub(crate) fn pending_cipher_id(ssl: &SslRef) -> Option<u16> {
    // SAFETY: see the module essay: the SSL pointer is live for the borrow; the cipher
    // pointer is NULL-checked and only passed straight to SSL_CIPHER_get_protocol_id.
    unsafe {
        let cipher = SSL_get_pending_cipher(ssl.as_ptr());
        if cipher.is_null() {
            None
        } else {
            Some(openssl_sys::SSL_CIPHER_get_protocol_id(cipher))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::{Ssl, SslContext, SslMethod};

    /// Whether the hint reaches the wire is checked end to end (s_client, gnutls-cli and
    /// our client print or see it, tests/psk_*.rs): OpenSSL has no getter for a
    /// context's hint (`SSL_get_psk_identity_hint` reads the hint a client received).
    #[test]
    fn hint_setter_reports_success_and_failure() {
        let mut b = SslContext::builder(SslMethod::tls_server()).unwrap();
        set_psk_identity_hint(&mut b, c"3GPP-bootstrapping").unwrap();
        // Exactly PSK_MAX_IDENTITY_LEN (256) is accepted, one more is refused.
        let max = std::ffi::CString::new(vec![b'a'; 256]).unwrap();
        set_psk_identity_hint(&mut b, &max).unwrap();
        let over = std::ffi::CString::new(vec![b'a'; 257]).unwrap();
        assert!(set_psk_identity_hint(&mut b, &over).is_err());

        let mut b = SslContext::builder(SslMethod::tls_server()).unwrap();
        let long = std::ffi::CString::new(vec![b'a'; 2000]).unwrap();
        assert!(set_psk_identity_hint(&mut b, &long).is_err());
    }

    #[test]
    fn no_pending_cipher_before_a_handshake() {
        let ctx = SslContext::builder(SslMethod::tls_client())
            .unwrap()
            .build();
        let ssl = Ssl::new(&ctx).unwrap();
        assert_eq!(pending_cipher_id(&ssl), None);
    }
}
