//! Fuzzes IMPI validation (IMPIs come from Digest usernames and configuration).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_gba::impi::{validate_impi, MAX_IMPI_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if validate_impi(text).is_ok() {
        assert!(text.is_ascii() && text.len() <= MAX_IMPI_LEN);
        assert_eq!(text.matches('@').count(), 1);
        assert!(!text.contains(['"', '\\', ',', ' ']));
    }
});
