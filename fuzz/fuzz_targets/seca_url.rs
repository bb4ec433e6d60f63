//! Fuzzes the security agent's URL parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(url) = seccf_seca::http::Url::parse(text) {
            assert!(url.path.starts_with('/'));
            assert!(url.port != 0);
            let _ = url.host_header();
        }
    }
});
