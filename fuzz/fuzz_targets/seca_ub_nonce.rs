//! Fuzzes the split of a Ub nonce into RAND and AUTN.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = seccf_seca::ub::split_nonce(text);
    }
});
