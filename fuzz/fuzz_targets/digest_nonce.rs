//! Fuzzes the server nonce check (the nonce text comes from the client) and the
//! replay counter fed with it. A forged nonce must never be accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_digest::nonce::{NonceCounter, NonceFactory};
use seccf_secret::Secret;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = NonceFactory::new(Secret::new([7; 32]), 300);
    // Without the key the fuzzer cannot produce a valid MAC: acceptance is a bug.
    assert!(f.check(text, 1_750_000_000, b"realm").is_err());
    let mut c = NonceCounter::new(4, 300);
    let nc = data.len() as u32;
    let _ = c.check_and_record(text, nc, 1_750_000_000);
    let _ = c.check_and_record(text, nc, 1_750_000_000);
    assert!(c.len() <= 4);
});
