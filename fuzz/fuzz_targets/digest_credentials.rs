//! Fuzzes the `Authorization: Digest` parser (untrusted input at every server edge).
//! Whatever parses must format and re-parse to the same value, and verifying it must
//! not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_digest::Credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Credentials::parse(text) {
        let again = Credentials::parse(&c.to_header_value());
        assert_eq!(again.as_ref(), Ok(&c));
        let _ = seccf_digest::verify(&c, b"password", "GET", b"body");
    }
});
