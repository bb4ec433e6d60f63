//! Fuzzes `seccf_tls::revocation::OcspUrl::parse` (URLs come from peer certificates'
//! AIA extensions): whatever is accepted must print back to a URL that parses to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_tls::revocation::OcspUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = OcspUrl::parse(text) {
        assert_eq!(OcspUrl::parse(&url.to_string()).ok(), Some(url));
    }
});
