//! Fuzzes the short APDU parsers; what parses must re-encode to the same octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_uicc::apdu::{Command, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Command::parse(data) {
        assert_eq!(c.encode(), data);
    }
    if let Ok(r) = Response::parse(data) {
        assert_eq!(r.encode(), data);
    }
});
