//! Fuzzes the software USIM configuration parser (TOML). Errors must never echo the
//! K or OPc values of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_uicc::soft::SoftUsimConfig;
use seccf_uicc::CardError;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(CardError::Config(msg)) = SoftUsimConfig::from_toml_str(text) {
        // A recognisable marker placed only in a key value must not come back.
        if text.contains("k = \"deadbeef") && text.matches("deadbeef").count() == 1 {
            assert!(!msg.contains("deadbeef"));
        }
    }
});
