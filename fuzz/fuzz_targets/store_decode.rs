//! Fuzzes the decoders of stored column values (user security settings JSON, NAF FQDN
//! lists, GBA type, fixed-size blobs, integer ranges): a database file is untrusted
//! input and its rows must never make the KMC panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seccf_store::codec::decode_any(data);
});
