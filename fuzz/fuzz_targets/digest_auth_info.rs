//! Fuzzes the `Authentication-Info` parser (untrusted input at the client).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_digest::AuthenticationInfo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(a) = AuthenticationInfo::parse(text) {
        let again = AuthenticationInfo::parse(&a.to_header_value());
        assert_eq!(again.as_ref(), Ok(&a));
    }
});
