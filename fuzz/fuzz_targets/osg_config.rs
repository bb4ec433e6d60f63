//! Fuzzes the gateway configuration parser and validator (operator input, but a
//! panic at start-up would be a poor error message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seccf_osg::OsgConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = OsgConfig::from_toml_str(text);
    }
});
