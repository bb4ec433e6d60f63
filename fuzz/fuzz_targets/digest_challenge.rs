//! Fuzzes the `WWW-Authenticate: Digest` parser (untrusted input at the client), and
//! answering whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_digest::Challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Challenge::parse(text) {
        let again = Challenge::parse(&c.to_header_value());
        assert_eq!(again.as_ref(), Ok(&c));
        let qop = c.qop.first().copied();
        let _ = seccf_digest::answer(&c, "user", b"password", "GET", "/", qop, 1, "cnonce", b"");
    }
});
