#![no_main]
//! Zn BootstrappingInfoRequest bodies (JSON from gateways) through the KMC's parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seccf_kmc::zn::parse_request(data);
});
