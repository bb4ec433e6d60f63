//! Fuzzes the decoder of the security agent's (sealed) context record, and checks that
//! whatever decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ctx) = seccf_seca::BootstrapContext::from_record(data) {
        let again = ctx.to_record().expect("a decoded record re-encodes");
        assert_eq!(&again[..], data);
    }
});
