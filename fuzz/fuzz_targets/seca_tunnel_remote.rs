//! Fuzzes the tunnel's `host:port` parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = seccf_seca::tunnel::parse_remote(text) {
            assert!(r.port != 0);
            assert!(!r.host.is_empty() && r.host.len() <= seccf_seca::tunnel::MAX_REMOTE_LEN);
        }
    }
});
