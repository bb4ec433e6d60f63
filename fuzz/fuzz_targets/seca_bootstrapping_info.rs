//! Fuzzes the Ub 200 OK BootstrappingInfo parser of the security agent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = seccf_seca::ub::parse_bootstrapping_info(data) {
        assert!(!info.btid.is_empty());
        assert!(info.btid.len() <= seccf_seca::ub::MAX_FIELD_LEN);
    }
});
